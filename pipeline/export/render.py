"""One output file's pixels and bytes: the crop, sRGB with its ICC profile, the XMP disclosure, encoding."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Optional, Sequence
from xml.sax.saxutils import escape

from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from .. import provenance
from .specs import ExportSpec

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


def save(im: Image.Image, path: Path, spec: ExportSpec, xmp: str) -> None:
    """Encode ``im`` for ``spec`` with the sRGB profile and the XMP packet (before signing)."""
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
