"""Streaming batch: any number of member photos in bounded memory.

Photos are processed a few at a time (``max_in_flight``) on a small thread pool (decoding, OpenCV and
MediaPipe release the GIL, so two threads use two cores). Each portrait is written to disk as a
master as soon as it is made and dropped from memory; only its measurements and a few-KB thumbnail
stay for the team report and the contact sheet.
"""
from __future__ import annotations

import json
import logging
import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable

import cv2

from ..faces import FaceAnalyzer
from ..intake import IntakeLimits
from ..presets.styleguide import StyleGuide
from . import crop
from .names import member_name
from .portrait import Source, _default_analyzer, member_id_for, standardize_photo
from .report import DEFAULT_THRESHOLDS, FAIL, PortraitResult, StandardizeThresholds
from .sheet import contact_sheet, thumb_size, thumbnail_bytes
from .team import TeamReport, team_report

log = logging.getLogger(__name__)

MASTER_QUALITY = 95
REPORT_NAME = "report.json"
SHEET_NAME = "contact_sheet.jpg"
MASTERS_DIR = "portraits"


def save_master(img, path: Path, fmt: str = "JPEG") -> Path:
    """A high-quality master with the sRGB ICC profile: JPEG q95 4:4:4 (default) or lossless PNG."""
    from ..export import SRGB_ICC

    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "PNG":
        img.save(tmp, "PNG", icc_profile=SRGB_ICC, compress_level=3)
    else:
        img.save(tmp, "JPEG", quality=MASTER_QUALITY, subsampling=0, icc_profile=SRGB_ICC)
    os.replace(tmp, path)  # a crash never leaves a half-written master under the real name
    return path


def _name_of(src: Source) -> str:
    return src[0] if isinstance(src, tuple) else Path(src).name


def standardize_batch(sources: Iterable[Source], guide: StyleGuide, out_dir: str | Path, *,
                      background: str | None = None, analyzer: FaceAnalyzer | None = None, workers: int = 2,
                      max_in_flight: int | None = None, size: tuple[int, int] | None = None, verify: bool = True,
                      master_format: str = "JPEG", thresholds: StandardizeThresholds = DEFAULT_THRESHOLDS,
                      limits: IntakeLimits = IntakeLimits(), export: bool = False, data_dir=None,
                      people: dict[str, dict[str, str]] | None = None,
                      progress: Callable[[int], None] | None = None) -> TeamReport:
    """Standardise every photo in ``sources`` (paths or ``(name, bytes)``; a generator is fine) into
    ``out_dir``: ``portraits/<member>.jpg`` masters, ``report.json`` and ``contact_sheet.jpg``.

    ``people`` maps a file name to ``{"first", "last"}`` (e.g. from a CSV); otherwise names come from
    the file names. ``export`` also writes the guide's export specs (C2PA-signed, XMP
    ``compositeSynthetic``) under ``out_dir/export`` for every portrait that did not fail.
    """
    spec = guide.framing_spec()
    bg = guide.background(background)  # an unknown id is a usage error: raise before any work
    size = tuple(size) if size else crop.working_size(spec)
    analyzer = analyzer or _default_analyzer()
    out_dir = Path(out_dir)
    masters = out_dir / MASTERS_DIR
    masters.mkdir(parents=True, exist_ok=True)
    ext = "png" if master_format == "PNG" else "jpg"
    workers = max(1, workers)
    max_in_flight = max(1, max_in_flight or 2 * workers)
    if workers > 1:
        # The photo threads fill the cores; OpenCV's own pool inside each call only adds hand-offs.
        cv2.setNumThreads(1)
    tsize = thumb_size(size)

    def one(src: Source, member_id: str) -> PortraitResult:
        name = _name_of(src)
        person = (people or {}).get(name) or member_name(name)
        r = standardize_photo(src, guide, bg.id, analyzer=analyzer, size=size, member_id=member_id, person=person,
                              verify=verify, thresholds=thresholds, limits=limits)
        if r.image is not None:
            try:
                r.output = str(save_master(r.image, masters / f"{member_id}.{ext}", master_format))
                r.thumbnail = thumbnail_bytes(r.image, tsize)
            except OSError as exc:
                log.warning("standardize: could not write a master (%s)", type(exc).__name__)
                r.add("processing_error", FAIL, detail="(the portrait could not be written)")
            r.image = None  # written: drop the pixels, keep memory flat however long the batch
        return r

    results: dict[int, PortraitResult] = {}
    used: set[str] = set()
    pending: dict[Future, int] = {}
    done_count = 0

    def collect(done) -> None:
        nonlocal done_count
        for fut in done:
            results[pending.pop(fut)] = fut.result()
            done_count += 1
            if progress:
                progress(done_count)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="standardize") as pool:
        for i, src in enumerate(sources):
            mid = base = member_id_for(_name_of(src))
            n = 2
            while mid in used:  # two files for one name: keep both, never overwrite a master
                mid, n = f"{base}-{n}", n + 1
            used.add(mid)
            while len(pending) >= max_in_flight:
                collect(wait(pending, return_when=FIRST_COMPLETED).done)
            pending[pool.submit(one, src, mid)] = i
        while pending:
            collect(wait(pending, return_when=FIRST_COMPLETED).done)

    photos = [results[i] for i in sorted(results)]
    report = team_report(photos, guide.key, bg.id, size, thresholds)
    sheet = contact_sheet(photos, size, f"{guide.title} ({guide.key}, background {bg.id})")
    sheet_path = out_dir / SHEET_NAME
    sheet.save(sheet_path, "JPEG", quality=88)
    for p in photos:
        p.thumbnail = None
    report.files = {"portraits": str(masters), "contact_sheet": str(sheet_path), "report": str(out_dir / REPORT_NAME)}
    if export:
        report.files["export"] = str(export_team(report, guide, out_dir / "export", data_dir))
    (out_dir / REPORT_NAME).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    return report


def export_team(report: TeamReport, guide: StyleGuide, out_dir: Path, data_dir=None) -> Path | None:
    """Export every portrait that did not fail with the guide's specs and names; the zip's path.

    The masters are already framed, so each spec only crops to its aspect around the full frame.
    The files say what they are: a real person on a replaced background (XMP and C2PA
    ``compositeSynthetic``).
    """
    from .. import provenance
    from ..export import export_bundle
    from ..session import data_root

    keep = [p for p in report.photos if p.verdict != FAIL and p.output]
    if not keep:
        return None
    w, h = report.size
    return export_bundle({p.member_id: p.output for p in keep}, list(guide.output.export_specs), out_dir,
                         generated=False, digital_source_type=provenance.DST_COMPOSITE_SYNTHETIC,
                         people={p.member_id: {"first": p.person.get("first", ""), "last": p.person.get("last", "")}
                                 for p in keep},
                         name_template=guide.output.name_template, crop_box=(0, 0, w, h), crop_margin=0,
                         data_dir=data_dir or data_root(), zip_name=f"{guide.name}_team")
