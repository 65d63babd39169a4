"""Head-and-shoulders framing: one crop rule for every photo, and the previews the Review step shows.

A crop is computed from the face landmarks of the analysed image:

- the eye midpoint is centred horizontally and sits at ``spec.eye_line`` of the frame height;
- the frame height is chosen so that the head (crown to chin) fills ``spec.head_height`` of it.

The crown is the top of the head *including hair*. With a person mask it is the mask's top row
within the face column (the column one face-box wide around the eye midpoint). Without a usable
mask it is estimated from the landmarks: in adult heads the eyes sit about half-way between the
crown and the chin, so ``crown = eyes - 1.0 * (chin - eyes)``. The chin is the face-mesh chin, or
the detector box's bottom edge when the mesh was not found. The box is axis-aligned: roll is left
to the straightening step.

When the ideal box does not fit in the image it is first shrunk about the eyes (so their placement
stays exact and the head grows beyond ``head_height``) as far as the head still fits with a small
margin; whatever still sticks out is then removed by shifting the box as little as possible; the returned :class:`Crop` says so (``clamped``) and by how much
(``shortfall``). Nothing is ever padded.

Boxes are in integer pixels with the spec's aspect exactly (``w * q == h * p`` for aspect p:q).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .faces import FaceInfo

# Eyes sit about half-way between crown and chin: crown = eyes - CROWN_RATIO * (chin - eyes).
CROWN_RATIO = 1.0
# A mask row counts as "person" in the face column when this share of the column is covered.
MASK_ROW_SHARE = 0.15
MASK_THRESHOLD = 0.5
# When shrinking a too-big box about the eyes, keep crown and chin this far (share of the frame) inside.
HEAD_MARGIN = 0.05
# A chin or hair top closer than this to the circle (fraction of the radius) is not circle-safe.
CIRCLE_MIN_MARGIN = 0.05
# Hair or chin this close to the photo's own edge (fraction of the head height) is cut by the photo.
PHOTO_EDGE_TOLERANCE = 0.02


@dataclass(frozen=True)
class FramingSpec:
    aspect: float  # width / height
    eye_line: float  # eye height as a fraction of the frame height from the top
    head_height: float  # crown-to-chin as a fraction of the frame height
    name: str = ""

    def ratio(self) -> tuple[int, int]:
        """The aspect as small integers (p, q) with p/q == aspect."""
        f = Fraction(self.aspect).limit_denominator(100)
        return f.numerator, f.denominator


SPECS: MappingProxyType[str, FramingSpec] = MappingProxyType({
    "linkedin": FramingSpec(1.0, 0.40, 0.45, "linkedin"),
    "web-bio": FramingSpec(0.8, 0.38, 0.40, "web-bio"),
    "directory": FramingSpec(1.0, 0.42, 0.50, "directory"),
    "avatar": FramingSpec(1.0, 0.42, 0.55, "avatar"),
})


@dataclass
class HeadGeometry:
    eye_x: float
    eye_y: float
    chin_y: float
    crown_y: float
    crown_source: str  # "mask" or "landmarks"
    face_left: float
    face_right: float

    @property
    def head(self) -> float:
        return self.chin_y - self.crown_y


@dataclass
class Crop:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (x1/y1 exclusive), in image_size pixels
    image_size: tuple[int, int]  # (w, h) of the image the box refers to
    spec: FramingSpec
    clamped: bool = False
    # Why and how much the ideal box missed: "scale" (achieved / ideal size), "shift" (dx, dy in
    # px the box moved to stay inside), "overflow" (px the ideal box stuck out at each edge).
    shortfall: dict = field(default_factory=dict)
    ideal: tuple[float, float, float, float] | None = None
    geometry: HeadGeometry | None = None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    def scaled_to(self, size: tuple[int, int]) -> "Crop":
        """The same crop on the same photo at another resolution (e.g. analysis -> full size).

        The box is re-snapped to the exact aspect and kept inside the image."""
        if tuple(size) == tuple(self.image_size):
            return self
        f = size[0] / self.image_size[0]
        p, q = self.spec.ratio()
        x0, y0, x1, y1 = (v * f for v in self.box)
        k = max(1, min(int(round((y1 - y0) / q)), size[0] // p, size[1] // q))
        w, h = p * k, q * k
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        nx0 = int(round(min(max(cx - w / 2, 0), size[0] - w)))
        ny0 = int(round(min(max(cy - h / 2, 0), size[1] - h)))
        return Crop((nx0, ny0, nx0 + w, ny0 + h), tuple(size), self.spec, self.clamped, dict(self.shortfall),
                    None if self.ideal is None else tuple(v * f for v in self.ideal), None)

    def scaled(self, factor: float) -> "Crop":
        """Multiply coordinates by ``factor``; ``crop.scaled(1 / photo.scale)`` gives full size."""
        w, h = self.image_size
        return self.scaled_to((int(round(w * factor)), int(round(h * factor))))

    def to_dict(self) -> dict:
        return {"box": list(self.box), "image_size": list(self.image_size), "spec": self.spec.name,
                "clamped": self.clamped, "shortfall": self.shortfall}


def to_full_size(crop: Crop, photo) -> Crop:
    """An analysis-size crop of ``photo`` (an intake ``Photo``) in full-size pixels."""
    return crop.scaled_to(tuple(photo.original_size))


def head_geometry(face: FaceInfo, image_size: tuple[int, int], person_mask: np.ndarray | None = None) -> HeadGeometry:
    lm = face.landmarks
    (lx, ly), (rx, ry) = lm["left_eye"], lm["right_eye"]
    eye_x, eye_y = (lx + rx) / 2, (ly + ry) / 2
    bx, by, bw, bh = face.box
    chin_y = lm["chin"][1] if "chin" in lm else by + bh
    d = max(chin_y - eye_y, 1.0)
    crown_y, source = eye_y - CROWN_RATIO * d, "landmarks"
    top = _mask_top(person_mask, image_size, eye_x, eye_y, bw) if person_mask is not None else None
    if top is not None:
        # Trust the mask only where it is plausible: above the forehead, not far above the crown.
        upper = lm["forehead"][1] if "forehead" in lm else eye_y - 0.5 * d
        if eye_y - 2.0 * d <= top <= upper:
            crown_y, source = top, "mask"
    return HeadGeometry(eye_x, eye_y, chin_y, crown_y, source, bx, bx + bw)


def _mask_top(mask: np.ndarray, image_size, eye_x: float, eye_y: float, face_w: float) -> float | None:
    """Top row of the person mask in the face column above the eyes, in image pixels."""
    mh, mw = mask.shape[:2]
    sx, sy = mw / image_size[0], mh / image_size[1]
    c0 = int(max(0, math.floor((eye_x - face_w / 2) * sx)))
    c1 = int(min(mw, math.ceil((eye_x + face_w / 2) * sx)))
    r1 = int(min(mh, max(0, eye_y * sy)))
    if c1 - c0 < 2 or r1 < 1:
        return None
    share = (mask[:r1, c0:c1] > MASK_THRESHOLD).mean(axis=1)
    rows = np.flatnonzero(share >= MASK_ROW_SHARE)
    if not len(rows):
        return None
    return float(rows[0]) / sy


def head_and_shoulders_box(face: FaceInfo, image_size: tuple[int, int], spec: FramingSpec | str = "linkedin",
                           person_mask: np.ndarray | None = None) -> Crop:
    """The framing crop of ``face`` in an image of ``image_size`` (w, h); see the module notes."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    W, H = image_size
    g = head_geometry(face, image_size, person_mask)
    p, q = spec.ratio()
    fh = g.head / spec.head_height
    fw = fh * p / q
    ideal = (g.eye_x - fw / 2, g.eye_y - spec.eye_line * fh, g.eye_x + fw / 2, g.eye_y + (1 - spec.eye_line) * fh)
    overflow = {"left": max(0.0, -ideal[0]), "top": max(0.0, -ideal[1]),
                "right": max(0.0, ideal[2] - W), "bottom": max(0.0, ideal[3] - H)}
    # Too big for the photo: first shrink about the eyes, keeping their placement exact, as far
    # as the head still fits (crown and chin HEAD_MARGIN inside the frame); only then shift.
    a = spec.eye_line
    fit = min(g.eye_y / a, (H - g.eye_y) / (1 - a), 2 * min(g.eye_x, W - g.eye_x) * q / p)
    floor = max((g.eye_y - g.crown_y) / max(a - HEAD_MARGIN, 1e-3), (g.chin_y - g.eye_y) / max(1 - a - HEAD_MARGIN, 1e-3))
    target = min(fh, max(fit, floor))
    k = max(1, min(int(math.floor(target / q + 1e-6)) if target < fh else int(round(fh / q)), W // p, H // q))
    w, h = p * k, q * k
    x0 = g.eye_x - w / 2
    y0 = g.eye_y - a * h
    nx0 = int(round(min(max(x0, 0), W - w)))
    ny0 = int(round(min(max(y0, 0), H - h)))
    shift = (nx0 - x0, ny0 - y0)
    scale = h / fh
    clamped = scale < 0.98 or any(v > 1.0 for v in overflow.values())
    shortfall = {}
    if clamped:
        # scale < 1: the head is larger than spec.head_height; a shift moves the eyes off their place.
        shortfall = {
            "scale": round(scale, 3),
            "shift": [round(shift[0], 1), round(shift[1], 1)],
            "overflow": {k_: round(v, 1) for k_, v in overflow.items() if v > 0},
            "eye_line": round((g.eye_y - ny0) / h, 3),
            "eye_centre": round((g.eye_x - nx0) / w, 3),
        }
    return Crop((nx0, ny0, nx0 + w, ny0 + h), (W, H), spec, clamped, shortfall, ideal, g)


def crop_image(img: Image.Image, crop: Crop) -> Image.Image:
    """Cut ``crop`` out of ``img``; a crop made at another resolution of the same photo is rescaled."""
    c = crop.scaled_to(img.size)
    return img.crop(c.box)


def circle_safety(crop: Crop, face: FaceInfo, person_mask: np.ndarray | None = None) -> dict:
    """Margins between the circle inscribed in a square crop and the head, as fractions of the radius.

    Positive = inside the circle. ``safe`` when hair top, chin and face sides are all at least
    ``CIRCLE_MIN_MARGIN`` inside and neither hair nor chin is cut by the photo's own edge.
    """
    g = crop.geometry or head_geometry(face, crop.image_size, person_mask)
    if person_mask is not None and g.crown_source != "mask":
        g = head_geometry(face, crop.image_size, person_mask)
    x0, y0, x1, y1 = crop.box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    r = min(x1 - x0, y1 - y0) / 2
    mid_y = (g.eye_y + g.chin_y) / 2

    def margin(x, y):
        return round((r - math.hypot(x - cx, y - cy)) / r, 3)

    margins = {
        "hair": margin(g.eye_x, g.crown_y),
        "chin": margin(g.eye_x, g.chin_y),
        "left": margin(g.face_left, mid_y),
        "right": margin(g.face_right, mid_y),
    }
    tol = PHOTO_EDGE_TOLERANCE * g.head
    cut = []
    if g.crown_y <= tol:
        cut.append("hair")
    if g.chin_y >= crop.image_size[1] - 1 - tol:
        cut.append("chin")
    safe = not cut and all(v >= CIRCLE_MIN_MARGIN for v in margins.values())
    return {"margins": margins, "cut_by_photo": cut, "crown_source": g.crown_source, "safe": safe}


# --- previews -------------------------------------------------------------------------------------

def _circle(img: Image.Image, size: int, background) -> Image.Image:
    """``img`` (square) resized to ``size`` inside an anti-aliased circle; corners are ``background``
    (an RGB tuple) or transparent when ``background`` is None."""
    face = img.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    ss = 4
    mask = Image.new("L", (size * ss, size * ss), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size * ss - 1, size * ss - 1), fill=255)
    mask = mask.resize((size, size), Image.Resampling.LANCZOS)
    if background is None:
        out = face.convert("RGBA")
        out.putalpha(mask)
        return out
    out = Image.new("RGB", (size, size), background)
    out.paste(face, (0, 0), mask)
    return out


def linkedin_circle(img: Image.Image, crop: Crop, size: int = 400, background=(255, 255, 255)) -> Image.Image:
    return _circle(crop_image(img, crop), size, background)


def email_avatar(img: Image.Image, crop: Crop, size: int = 96, background=(255, 255, 255)) -> Image.Image:
    return _circle(crop_image(img, crop), size, background)


def directory_thumbnail(img: Image.Image, crop: Crop, size: int = 128) -> Image.Image:
    return crop_image(img, crop).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


def bio_crop(img: Image.Image, crop: Crop, width: int = 320) -> Image.Image:
    """A web-bio crop (4:5 from the ``web-bio`` spec) at ``width``; the height follows the crop's aspect."""
    p, q = crop.spec.ratio()
    if width % p:
        raise ValueError(f"width {width} is not a multiple of {p}, so the {p}:{q} aspect cannot be exact")
    return crop_image(img, crop).convert("RGB").resize((width, width // p * q), Image.Resampling.LANCZOS)


def preview_sheet(img: Image.Image, face: FaceInfo, mask: np.ndarray | None = None,
                  analysis_size: tuple[int, int] | None = None) -> Image.Image:
    """The previews side by side with labels. ``face`` (and ``mask``) belong to the analysis image
    of ``analysis_size`` (default: ``img``'s size); ``img`` may be the full-size photo."""
    size = tuple(analysis_size or img.size)
    sq = head_and_shoulders_box(face, size, SPECS["linkedin"], mask)
    bio = head_and_shoulders_box(face, size, SPECS["web-bio"], mask)
    safety = circle_safety(sq, face, mask)
    tiles = [
        ("LinkedIn 400", linkedin_circle(img, sq, 400)),
        ("LinkedIn 48", linkedin_circle(img, sq, 48)),
        ("Directory 128", directory_thumbnail(img, head_and_shoulders_box(face, size, SPECS["directory"], mask), 128)),
        ("Web bio 4:5", bio_crop(img, bio, 320)),
        ("Email 96", email_avatar(img, head_and_shoulders_box(face, size, SPECS["avatar"], mask), 96)),
    ]
    pad, label_h = 16, 40
    font = ImageFont.load_default()
    width = pad + sum(t.width + pad for _, t in tiles)
    height = pad + max(t.height for _, t in tiles) + label_h + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = pad
    for label, tile in tiles:
        sheet.paste(tile.convert("RGB"), (x, pad))
        draw.text((x, pad + tile.height + 6), label, fill=(40, 40, 40), font=font)
        x += tile.width + pad
    notes = []
    if sq.clamped:
        notes.append("framing limited by the photo edge")
    if not safety["safe"]:
        notes.append("circle may cut hair/chin")
    draw.text((pad, height - pad - 10), "; ".join(notes) or "framing OK", fill=(160, 40, 40) if notes else (40, 120, 40), font=font)
    return sheet


def frame_photo(path, spec: FramingSpec | str = "linkedin", analyzer=None) -> Crop | None:
    """The full-size head-and-shoulders crop of the main face in a photo file; None without a face."""
    from .capture import default_analyzer
    from .intake import open_photo

    photo = open_photo(path)
    analysis = (analyzer or default_analyzer()).analyze(photo.rgb, with_mask=True)
    if analysis.primary is None:
        return None
    crop = head_and_shoulders_box(analysis.primary, analysis.image_size, spec, analysis.person_mask)
    return to_full_size(crop, photo)
