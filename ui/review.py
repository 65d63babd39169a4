"""Step 5 handlers: the three-layer review of this session's results, previews and the shortlist."""
import json

import gradio as gr
from PIL import Image

from pipeline.capture import default_analyzer
from pipeline.framing import preview_sheet
from pipeline.generate import Lineage
from pipeline.intake import open_photo
from pipeline.previews import review_caption, review_rows
from pipeline.review import build_reference, review_many

from .common import session_of as _session


def review_results(preset: str | None, sort_by_identity: bool, only_passing: bool, request: gr.Request,
                   progress=gr.Progress(track_tqdm=True)):
    session = _session(request)
    lineage = Lineage(session.dir)
    ids = lineage.ids()
    if not ids:
        raise gr.Error("Generate some results first.")
    capture = session.selected_photos() or session.photos()
    if not capture:
        raise gr.Error("The review compares results with your capture photos: check them in step 1 first.")
    reference = build_reference(capture)
    if not len(reference.files):
        raise gr.Error("No face was found in your capture photos.")
    paths = [session.results_dir / lineage.get(i)["image"] for i in ids]
    reports = review_many(paths, reference, preset=preset or None)
    (session.dir / "review.json").write_text(json.dumps({i: r.to_dict() for i, r in zip(ids, reports)}))
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
    path = session.results_dir / Lineage(session.dir).get(result_id)["image"]
    photo = open_photo(path)
    analysis = default_analyzer().analyze(photo.rgb, with_mask=True)
    if analysis.primary is None:
        gr.Warning("No face in this result, so there are no framing previews.")
        sheet = None
    else:
        sheet = session.previews_dir / f"sheet_{result_id}.png"
        preview_sheet(Image.fromarray(photo.rgb), analysis.primary, analysis.person_mask).save(sheet)
        sheet = str(sheet)
    report = json.loads((session.dir / "review.json").read_text()).get(result_id)
    return result_id, sheet, report


def approve(result_id: str | None, request: gr.Request) -> str:
    return set_approval(result_id, True, request)


def reject(result_id: str | None, request: gr.Request) -> str:
    return set_approval(result_id, False, request)


def set_approval(result_id: str | None, approved: bool, request: gr.Request) -> str:
    if not result_id:
        raise gr.Error("Pick a reviewed result first.")
    _session(request).set_approval(result_id, approved)
    return f"{'Approved' if approved else 'Rejected'}: {result_id}. Export uses the approved results."
