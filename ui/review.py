"""Step 5 handlers: the three-layer review of this session's results, previews and the shortlist."""
import json
from pathlib import Path

import gradio as gr
from PIL import Image

from pipeline.capture import default_analyzer
from pipeline.framing import preview_sheet
from pipeline.generate import Lineage
from pipeline.intake import open_photo
from pipeline.previews import review_caption, review_rows
from pipeline.presets import PresetError
from pipeline.review import review_many

from . import validate
from .common import capture_reference, note_uploads

from .common import session_of as _session


def review_results(preset: str | None, sort_by_identity: bool, only_passing: bool, uploads: list[str] | None,
                   request: gr.Request, progress=gr.Progress(track_tqdm=True)):
    """Review uploaded images if any, else this session's generated results."""
    session = _session(request)
    lineage = Lineage(session.dir)
    if uploads:
        if len(uploads) > validate.MAX_UPLOADS:
            raise gr.Error(f"Review at most {validate.MAX_UPLOADS} images at a time.")
        paths = [Path(f) for f in uploads]
        note_uploads(session, paths)
        ids = [f"{i + 1}-{p.stem}" for i, p in enumerate(paths)]
    else:
        ids = lineage.ids()
        paths = [session.results_dir / lineage.get(i)["image"] for i in ids]
    if not ids:
        raise gr.Error("Generate some results first, or upload images to review.")
    reference = capture_reference(session)
    if reference is None:
        raise gr.Error("The review compares results with your capture photos: upload and check photos "
                       "with your face in step 1 first.")
    try:
        reports = review_many(paths, reference, preset=preset or None)
    except PresetError as exc:  # an unknown preset name sent through the API
        raise gr.Error(str(exc))
    (session.dir / "review.json").write_text(json.dumps(
        {i: {"path": str(p), "report": r.to_dict()} for i, p, r in zip(ids, paths, reports)}))
    rows = list(zip(ids, paths, reports))
    if only_passing:
        rows = [row for row in rows if row[2].verdict == "pass"]
    if sort_by_identity:
        rows.sort(key=lambda row: -(row[2].identity.values.get("centroid_similarity") or -1.0))
    return [(str(p), review_caption(r)) for _, p, r in rows], [i for i, _, _ in rows], review_rows(rows)


def show_review(ids: list[str], evt: gr.SelectData, request: gr.Request):
    """The platform previews and the full report of the picked result."""
    if not ids or evt.index >= len(ids):
        return None, None, None
    session, result_id = _session(request), ids[evt.index]
    reviewed = json.loads((session.dir / "review.json").read_text())[result_id]
    photo = open_photo(reviewed["path"])
    analysis = default_analyzer().analyze(photo.rgb, with_mask=True)
    if analysis.primary is None:
        gr.Warning("No face in this result, so there are no framing previews.")
        sheet = None
    else:
        sheet = session.previews_dir / f"sheet_{result_id}.png"
        preview_sheet(Image.fromarray(photo.rgb), analysis.primary, analysis.person_mask).save(sheet)
        sheet = str(sheet)
    return result_id, sheet, reviewed["report"]


def approve(result_id: str | None, request: gr.Request) -> str:
    return set_approval(result_id, True, request)


def reject(result_id: str | None, request: gr.Request) -> str:
    return set_approval(result_id, False, request)


def set_approval(result_id: str | None, approved: bool, request: gr.Request) -> str:
    if not result_id:
        raise gr.Error("Pick a reviewed result first.")
    _session(request).set_approval(result_id, approved)
    return f"{'Approved' if approved else 'Rejected'}: {result_id}. Export uses the approved results."
