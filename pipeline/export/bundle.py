"""The export itself: each image per spec, C2PA-signed last, then a zip with ``manifest.json``."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from PIL import Image, ImageOps

from .. import provenance
from ..durable import write_atomic
from . import render
from .naming import DEFAULT_NAME_TEMPLATE, _inside, render_name, slugify
from .render import build_xmp, crop_rect, to_srgb
from .specs import EXPORT_SPECS, MIME, ExportSpec, get_spec

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
                    render.save(out, tmp, spec, build_xmp(dst_type, title=title, generated=generated,
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
        write_atomic(out_dir / "manifest.json", manifest_text.encode("utf-8"))
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


def export_framed(images: Mapping[str, str | Path], spec_names: Sequence[str], out_dir, person=None,
                  generated: bool = True, data_dir=None, analyzer=None,
                  specs: Mapping[str, ExportSpec] = EXPORT_SPECS) -> tuple[Path, list[str]]:
    """Frame each image head-and-shoulders (centre crop where no face is found), then
    :func:`export_bundle`. Returns the zip and the ids that could not be framed."""
    from ..framing import frame_photo

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
