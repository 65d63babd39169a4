"""Named export specs and the export step: crop, resize, sRGB, XMP disclosure, then C2PA.

Order per output file (nothing re-encodes after signing):

1. EXIF-orient, crop to the spec's aspect (centre crop, or around a provided crop box),
2. resize with LANCZOS,
3. convert to sRGB (ImageCms) and embed the sRGB ICC profile,
4. write XMP with ``Iptc4xmpExt:DigitalSourceType`` (JPEG/WebP via ``xmp=``, PNG via an iTXt
   ``XML:com.adobe.xmp`` chunk),
5. sign a C2PA manifest into the saved bytes — the very last write.

``EXPORT_SPECS`` is a read-only table (a ``MappingProxyType`` of frozen dataclasses) declared as
data in ``presets/export/specs.yaml``; :func:`resolve_specs` applies a preset's or style guide's
overrides.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Optional, Sequence, Union
from xml.sax.saxutils import escape

import yaml
from PIL import Image, ImageCms, ImageOps
from PIL.PngImagePlugin import PngInfo

from . import provenance

class ExportError(OSError):
    """An export that could not be written (e.g. the disk is full); the message is safe to show.

    A subclass of OSError so callers that already catch OSError keep working."""


# ENOSPC: no space left on the device; EDQUOT: the user's disk quota is used up.
_DISK_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())
DISK_FULL_MESSAGE = ("The disk is full, so the export could not be written. Nothing half-written was "
                     "left behind. Free some disk space, or export fewer images or sizes, and try again.")


def _failed(exc: BaseException) -> BaseException:
    """What an export failure is re-raised as: disk full becomes one clear :class:`ExportError`."""
    if isinstance(exc, OSError) and not isinstance(exc, ExportError) and exc.errno in _DISK_FULL:
        return ExportError(errno.ENOSPC, DISK_FULL_MESSAGE)
    return exc


def _remove(paths) -> None:
    for p in paths:
        try:
            Path(p).unlink(missing_ok=True)
        except OSError:  # best effort: the original error is what the caller needs to see
            pass


# --------------------------------------------------------------------------- specs
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

DEFAULT_NAME_TEMPLATE = "{last}_{first}_{spec}_{w}x{h}.{ext}"
_TEMPLATE_KEYS = {"last", "first", "spec", "w", "h", "ext", "index"}


@dataclass(frozen=True)
class ExportSpec:
    """One named export target.

    ``sizes``: exact output pixel sizes (one file each); empty means "the largest size the
    crop allows" (at least ``min_side`` on the short side, upscaling only if needed).
    ``aspect``: (w, h) ratio of the crop. ``safe_margin``: extra room around a provided crop box,
    as a fraction of its size per side (``circle_safe`` specs use it so a head-and-shoulders
    box stays inside the inscribed circle of a round avatar mask).
    """
    name: str
    aspect: tuple[int, int]
    sizes: tuple[tuple[int, int], ...] = ()
    format: str = "JPEG"
    quality: int = 92
    min_side: int = 0
    circle_safe: bool = False
    safe_margin: float = 0.0
    description: str = ""

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}")
        if not (1 <= self.quality <= 100):
            raise ValueError("quality must be 1..100")
        aw, ah = self.aspect
        for w, h in self.sizes:
            if abs(w / h - aw / ah) > 0.01:
                raise ValueError(f"{self.name}: size {w}x{h} does not match aspect {aw}:{ah}")

    @property
    def ext(self) -> str:
        return FORMATS[self.format]

    def output_sizes(self, crop_w: float, crop_h: float) -> list[tuple[int, int]]:
        if self.sizes:
            return list(self.sizes)
        aw, ah = self.aspect
        # Largest size the crop provides (no upscaling), at least min_side on the short side.
        scale = max(min(crop_w / aw, crop_h / ah), self.min_side / min(aw, ah), 1 / min(aw, ah))
        k = math.floor(scale + 1e-6)
        return [(aw * k, ah * k)]


SPECS_FILE = Path(__file__).resolve().parents[1] / "presets" / "export" / "specs.yaml"
_OVERRIDABLE = {"sizes", "format", "quality", "min_side"}


def _spec_from_data(name: str, data: Mapping) -> ExportSpec:
    if not isinstance(data, Mapping):
        raise ValueError(f"export spec {name!r}: expected a mapping")
    unknown = set(data) - {f for f in ExportSpec.__dataclass_fields__ if f != "name"}
    if unknown:
        raise ValueError(f"export spec {name!r}: unknown key(s) {sorted(unknown)}")
    fields = dict(data)
    fields["aspect"] = tuple(fields.get("aspect") or (1, 1))
    fields["sizes"] = tuple(tuple(int(v) for v in size) for size in fields.get("sizes") or ())
    if len(fields["aspect"]) != 2 or any(len(sz) != 2 or min(sz) < 16 or max(sz) > 8192 for sz in fields["sizes"]):
        raise ValueError(f"export spec {name!r}: aspect and sizes are [w, h] pairs, sizes 16..8192 px")
    return ExportSpec(name=name, **fields)


def load_specs(path: Path = SPECS_FILE) -> Mapping[str, ExportSpec]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return MappingProxyType({name: _spec_from_data(name, d) for name, d in data.items()})


EXPORT_SPECS: Mapping[str, ExportSpec] = load_specs()


def resolve_specs(overrides: Mapping[str, Mapping] | None = None) -> Mapping[str, ExportSpec]:
    """The spec table with a preset's or style guide's overrides (sizes, format, quality,
    min_side) applied; the aspect and circle safety of a named spec stay as declared."""
    if not overrides:
        return EXPORT_SPECS
    table = dict(EXPORT_SPECS)
    for name, changes in overrides.items():
        base = get_spec(name)
        if bad := set(changes) - _OVERRIDABLE:
            raise ValueError(f"export spec {name!r}: cannot override {sorted(bad)}; allowed: {sorted(_OVERRIDABLE)}")
        changes = dict(changes)
        if "sizes" in changes:
            changes["sizes"] = tuple(tuple(int(v) for v in size) for size in changes["sizes"])
        table[name] = replace(base, **changes)
    return MappingProxyType(table)


def get_spec(name: str) -> ExportSpec:
    try:
        return EXPORT_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown export spec {name!r}; known: {sorted(EXPORT_SPECS)}") from None


# --------------------------------------------------------------------------- naming
def slugify(value, fallback: str = "x", max_len: int = 64) -> str:
    """ASCII letters, digits and ``-`` only (no dots, slashes or spaces)."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:max_len].strip("-")
    return text or fallback


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)?$")


def render_name(template: str, *, person: Mapping[str, str] | None, spec: str, w: int, h: int,
                ext: str, index: int = 0) -> str:
    """Fill ``template`` with slugified fields; the result is a single safe file name."""
    person = person or {}
    fields = {"last": slugify(person.get("last", ""), "person"),
              "first": slugify(person.get("first", ""), "x"),
              "spec": slugify(spec), "w": int(w), "h": int(h), "ext": slugify(ext),
              "index": int(index)}
    used = set(re.findall(r"{(\w*)[^}]*}", template))
    if not used <= _TEMPLATE_KEYS:
        raise ValueError(f"unknown name template fields {sorted(used - _TEMPLATE_KEYS)}")
    name = template.format(**fields)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_") or "export"
    name = f"{stem}.{slugify(suffix)}" if suffix else stem
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"unsafe export name {name!r}")
    return name


def _inside(out_dir: Path, name: str) -> Path:
    path = (out_dir / name).resolve()
    if path.parent != out_dir.resolve():
        raise ValueError(f"export name escapes the output folder: {name!r}")
    return path


# --------------------------------------------------------------------------- geometry
def crop_rect(img_w: int, img_h: int, aspect: tuple[int, int],
              crop_box: Optional[Sequence[float]] = None, margin: float = 0.0
              ) -> tuple[float, float, float, float]:
    """The crop (left, top, right, bottom) with ``aspect`` inside the image.

    Without ``crop_box``: the largest centred crop. With it: the smallest crop of that aspect
    containing the box grown by ``margin`` per side, centred on it, shrunk to fit and shifted
    to stay inside the image.
    """
    a = aspect[0] / aspect[1]
    if crop_box is None:
        cx, cy = img_w / 2, img_h / 2
        w, h = (img_h * a, img_h) if img_w / img_h > a else (img_w, img_w / a)
    else:
        l, t, r, b = (float(v) for v in crop_box)
        if r <= l or b <= t:
            raise ValueError(f"empty crop box {crop_box!r}")
        cx, cy = (l + r) / 2, (t + b) / 2
        bw, bh = (r - l) * (1 + 2 * margin), (b - t) * (1 + 2 * margin)
        w, h = (bh * a, bh) if bw / bh < a else (bw, bw / a)
        fit = min(1.0, img_w / w, img_h / h)
        w, h = w * fit, h * fit
    left = min(max(cx - w / 2, 0.0), img_w - w)
    top = min(max(cy - h / 2, 0.0), img_h - h)
    return (left, top, left + w, top + h)


# --------------------------------------------------------------------------- colour + xmp
_SRGB = ImageCms.createProfile("sRGB")
SRGB_ICC = ImageCms.ImageCmsProfile(_SRGB).tobytes()


def to_srgb(im: Image.Image) -> Image.Image:
    """RGB pixels in sRGB (converting from an embedded foreign ICC profile when present)."""
    icc = im.info.get("icc_profile")
    if im.mode not in ("RGB", "RGBA", "L", "LA", "CMYK", "I;16", "I", "F"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    if im.mode in ("LA", "RGBA"):
        im = im.convert("RGB")  # headshots: flatten alpha (outputs are opaque)
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if "srgb" not in (ImageCms.getProfileDescription(src) or "").lower():
                return ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB",
                                                 renderingIntent=ImageCms.Intent.PERCEPTUAL)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # unreadable profile: treat the pixels as sRGB
    return im.convert("RGB")


_DESCRIPTIONS = {
    provenance.DST_TRAINED_ALGORITHMIC_MEDIA: "AI-generated headshot (trained algorithmic media)",
    provenance.DST_MINOR_HUMAN_EDITS: "Photograph standardised by Headshot Studio (crop, resize, colour)",
    provenance.DST_COMPOSITE_SYNTHETIC: ("Photograph standardised by Headshot Studio: the person is real and "
                                         "unaltered in shape; crop, colour and a replaced plain background"),
}


def build_xmp(digital_source_type: str, *, title: str = "", generated: bool = False,
              person: Mapping[str, str] | None = None) -> str:
    desc = _DESCRIPTIONS.get(digital_source_type) or (
        _DESCRIPTIONS[provenance.DST_TRAINED_ALGORITHMIC_MEDIA if generated else provenance.DST_MINOR_HUMAN_EDITS])
    title_xml = (f"<dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{escape(title)}</rdf:li>"
                 f"</rdf:Alt></dc:title>") if title else ""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f' Iptc4xmpExt:DigitalSourceType="{escape(digital_source_type)}"'
        f' xmp:CreatorTool="{provenance.CLAIM_GENERATOR}">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(desc)}</rdf:li>'
        f'</rdf:Alt></dc:description>{title_xml}'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


def _save(im: Image.Image, path: Path, spec: ExportSpec, xmp: str) -> None:
    if spec.format == "JPEG":
        im.save(path, "JPEG", quality=spec.quality, optimize=True, progressive=False,
                icc_profile=SRGB_ICC, xmp=xmp.encode("utf-8"), subsampling=0 if spec.quality >= 90 else 2)
    elif spec.format == "WEBP":
        im.save(path, "WEBP", quality=spec.quality, method=4, icc_profile=SRGB_ICC,
                xmp=xmp.encode("utf-8"))
    else:
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp)  # Pillow ignores xmp= for PNG
        im.save(path, "PNG", optimize=False, compress_level=6, icc_profile=SRGB_ICC,
                pnginfo=info)


# --------------------------------------------------------------------------- export
@dataclass(frozen=True)
class ExportedFile:
    path: Path
    spec: str
    width: int
    height: int
    format: str
    sha256: str
    source_result: Optional[str] = None

    def to_dict(self) -> dict:
        return {"name": self.path.name, "spec": self.spec, "width": self.width,
                "height": self.height, "format": self.format, "sha256": self.sha256,
                "bytes": self.path.stat().st_size, "source_result": self.source_result}


def _default_source_type(generated: bool) -> str:
    return provenance.DST_TRAINED_ALGORITHMIC_MEDIA if generated else provenance.DST_MINOR_HUMAN_EDITS


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_image(image_path, spec_names: Sequence[str], out_dir, person: Mapping[str, str] | None = None,
                 generated: bool = True, crop_box: Optional[Sequence[float]] = None, *,
                 identity: Optional[provenance.SigningIdentity] = None, data_dir=None,
                 name_template: str = DEFAULT_NAME_TEMPLATE, source_result: Optional[str] = None,
                 crop_margin: Optional[float] = None,
                 specs: Mapping[str, ExportSpec] = EXPORT_SPECS,
                 digital_source_type: Optional[str] = None, signer=None,
                 taken: Optional[set[str]] = None) -> list[ExportedFile]:
    """Export one image for each named spec (and each of its sizes), C2PA-signed last.

    ``generated``: True marks the output as trained algorithmic media (AI headshot); False as a
    real photo with minor edits; ``digital_source_type`` overrides that (e.g. a real photo on a
    replaced background is ``compositeSynthetic``). ``identity`` (or ``data_dir`` to create/reuse
    one) signs; ``signer``, an open :func:`provenance.open_signer`, is reused when given.
    ``crop_box`` (left, top, right, bottom in the oriented image's pixels) is grown by each
    spec's ``safe_margin``; pass ``crop_margin=0`` when the box is already framed (e.g.
    ``pipeline.framing`` ``Crop.box``).
    """
    if identity is None:
        if data_dir is None:
            raise ValueError("pass identity= or data_dir= to sign exports")
        identity = provenance.ensure_signing_identity(data_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [specs[n] if n in specs else get_spec(n) for n in spec_names]
    dst_type = digital_source_type or _default_source_type(generated)
    extra = [] if generated else [{"action": "c2pa.cropped"}, {"action": "c2pa.resized"},
                                  {"action": "c2pa.color_adjustments"}]

    with Image.open(image_path) as raw:
        raw.load()
        icc = raw.info.get("icc_profile")
        im = ImageOps.exif_transpose(raw)
        if icc:
            im.info["icc_profile"] = icc
        im = to_srgb(im)

    results: list[ExportedFile] = []
    taken = set(taken or ())  # names already used in out_dir by this bundle
    try:
        for spec in chosen:
            rect = crop_rect(im.width, im.height, spec.aspect, crop_box,
                             (spec.safe_margin if crop_margin is None else crop_margin)
                             if crop_box is not None else 0.0)
            cw, ch = rect[2] - rect[0], rect[3] - rect[1]
            for w, h in spec.output_sizes(cw, ch):
                out = im.resize((w, h), Image.Resampling.LANCZOS, box=rect)
                name = render_name(name_template, person=person, spec=spec.name, w=w, h=h,
                                   ext=spec.ext, index=len(results))
                stem, ext = os.path.splitext(name)
                i = 2
                while name in taken:
                    name = f"{stem}-{i}{ext}"
                    i += 1
                taken.add(name)
                final = _inside(out_dir, name)
                title = name
                fd, tmp_name = tempfile.mkstemp(prefix=".unsigned-", suffix="." + spec.ext, dir=out_dir)
                os.close(fd)
                tmp = Path(tmp_name)
                try:
                    _save(out, tmp, spec, build_xmp(dst_type, title=title, generated=generated,
                                                    person=person))
                    # LAST step: signing writes the final file; nothing touches the pixels after.
                    provenance.sign_file(tmp, final, MIME[spec.format], identity,
                                         digital_source_type=dst_type, action="c2pa.created",
                                         title=title, extra_actions=extra, signer=signer)
                finally:
                    tmp.unlink(missing_ok=True)
                results.append(ExportedFile(final, spec.name, w, h, spec.format, sha256_file(final),
                                            source_result))
    except BaseException as exc:
        # Files this call finished are removed too: a half-exported image set is not an export.
        _remove(f.path for f in results)
        failure = _failed(exc)
        if failure is exc:
            raise
        raise failure from exc
    return results


def export_bundle(images: Union[str, Path, Sequence, Mapping], spec_names: Sequence[str], out_dir,
                  person: Mapping[str, str] | None = None, generated: bool = True,
                  crop_box: Optional[Sequence[float]] = None, *,
                  crop_boxes: Optional[Mapping[str, Sequence[float]]] = None,
                  identity: Optional[provenance.SigningIdentity] = None, data_dir=None,
                  zip_name: Optional[str] = None, crop_margin: Optional[float] = None,
                  name_template: str = DEFAULT_NAME_TEMPLATE,
                  digital_source_type: Optional[str] = None,
                  people: Optional[Mapping[str, Mapping[str, str]]] = None,
                  specs: Mapping[str, ExportSpec] = EXPORT_SPECS) -> Path:
    """Export images and pack them, plus ``manifest.json``, into a zip; return its path.

    ``images``: one path, a list of paths, or ``{result_id: path}``. ``crop_boxes`` maps a
    result id to its crop box (``crop_box`` applies to all otherwise). ``people`` maps a result
    id to its own person (a team library); names then stay distinct by person. Otherwise, with
    several images, the name template gets ``-r<N>`` before the extension so names stay distinct.
    One C2PA signer is opened for the whole bundle.
    """
    if isinstance(images, (str, Path)):
        items = [(Path(images).stem, Path(images))]
    elif isinstance(images, Mapping):
        items = [(str(k), Path(v)) for k, v in images.items()]
    else:
        items = [(Path(p).stem, Path(p)) for p in images]
    if not items:
        raise ValueError("nothing to export")
    if identity is None:
        if data_dir is None:
            raise ValueError("pass identity= or data_dir= to sign exports")
        identity = provenance.ensure_signing_identity(data_dir)
    out_dir = Path(out_dir)
    files_dir = out_dir / "files"
    made_files_dir = not files_dir.exists()
    files_dir.mkdir(parents=True, exist_ok=True)

    dst_type = digital_source_type or _default_source_type(generated)
    exported: list[ExportedFile] = []
    written: list[Path] = []  # final names this call wrote besides the image files
    tmp: Optional[Path] = None
    try:
        with provenance.open_signer(identity) as signer:
            for n, (result_id, path) in enumerate(items):
                who = (people or {}).get(result_id, person)
                template = name_template
                if len(items) > 1 and not people:
                    stem, dot, ext = name_template.rpartition(".")
                    template = f"{stem}-r{n + 1}.{ext}" if dot else f"{name_template}-r{n + 1}"
                box = (crop_boxes or {}).get(result_id, crop_box)
                exported += export_image(path, spec_names, files_dir, who, generated, box,
                                         identity=identity, name_template=template,
                                         source_result=result_id, crop_margin=crop_margin,
                                         digital_source_type=dst_type, signer=signer,
                                         taken={f.path.name for f in exported}, specs=specs)

        manifest = {
            "generator": provenance.CLAIM_GENERATOR,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "person": {k: str(v) for k, v in (person or {}).items() if k in ("first", "last")},
            "generated": bool(generated),
            "digital_source_type": dst_type,
            "c2pa_signed": True,
            "files": [f.to_dict() for f in exported],
        }
        if zip_name:
            zname = slugify(Path(str(zip_name)).stem if str(zip_name).endswith(".zip") else zip_name,
                            "headshots") + ".zip"
        else:
            zname = render_name("{last}_{first}_headshots.zip", person=person, spec="", w=0, h=0,
                                ext="zip")
        zip_path = _inside(out_dir, zname)
        manifest_text = json.dumps(manifest, indent=2)
        # Beside the zip, as the CLI promises; temp + rename so a failed write leaves no stub.
        _write_text_atomic(out_dir / "manifest.json", manifest_text)
        written.append(out_dir / "manifest.json")
        tmp = zip_path.with_name(zip_path.name + ".tmp")
        # ZIP_STORED: members are stored byte-for-byte (already-compressed images, signed bytes).
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for f in exported:
                zf.write(f.path, f.path.name)
            zf.writestr("manifest.json", manifest_text)
        os.replace(tmp, zip_path)
    except BaseException as exc:
        # No half bundle: remove this call's images, manifest and partial zip (other files stay).
        _remove([f.path for f in exported] + written + ([tmp] if tmp is not None else []))
        if made_files_dir:
            try:
                files_dir.rmdir()  # only if empty
            except OSError:
                pass
        failure = _failed(exc)
        if failure is exc:
            raise
        raise failure from exc
    return zip_path


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_framed(images: Mapping[str, str | Path], spec_names: Sequence[str], out_dir, person=None,
                  generated: bool = True, data_dir=None, analyzer=None,
                  specs: Mapping[str, ExportSpec] = EXPORT_SPECS) -> tuple[Path, list[str]]:
    """Frame each image head-and-shoulders (centre crop where no face is found), then
    :func:`export_bundle`. Returns the zip and the ids that could not be framed."""
    from .framing import frame_photo

    boxes, unframed = {}, []
    for key, path in images.items():
        crop = frame_photo(path, analyzer=analyzer)
        if crop is None:
            unframed.append(key)
        else:
            boxes[key] = crop.box
    zip_path = export_bundle(dict(images), spec_names, out_dir, person=person, generated=generated,
                             crop_boxes=boxes, crop_margin=0, data_dir=data_dir, specs=specs)
    return zip_path, unframed
