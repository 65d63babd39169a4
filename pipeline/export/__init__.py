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

Modules: :mod:`.specs` (the spec table), :mod:`.naming` (file names), :mod:`.render` (crop, sRGB,
XMP, encoding of one file), :mod:`.bundle` (export_image / export_bundle / export_framed, signing,
the zip and manifest, the disk-full guarantee).
"""
from .bundle import (DISK_FULL_MESSAGE, ExportError, ExportedFile, export_bundle, export_framed, export_image,
                     sha256_file)
from .naming import DEFAULT_NAME_TEMPLATE, render_name, slugify
from .render import SRGB_ICC, build_xmp, crop_rect, to_srgb
from .specs import EXPORT_SPECS, FORMATS, MIME, SPECS_FILE, ExportSpec, get_spec, load_specs, resolve_specs

__all__ = [
    "DEFAULT_NAME_TEMPLATE", "DISK_FULL_MESSAGE", "EXPORT_SPECS", "FORMATS", "MIME", "SPECS_FILE", "SRGB_ICC",
    "ExportError", "ExportSpec", "ExportedFile", "build_xmp", "crop_rect", "export_bundle", "export_framed",
    "export_image", "get_spec", "load_specs", "render_name", "resolve_specs", "sha256_file", "slugify", "to_srgb",
]
