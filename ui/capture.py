"""Step 1 handlers: check the capture set, confirm the selection, delete the photos."""
import json
from pathlib import Path

import gradio as gr

from pipeline.capture import check_capture
from pipeline.previews import capture_gallery, reasons_rows, set_summary
from pipeline.session import expire

from .common import forget_session
from .common import session_of as _session

MIN_PHOTOS, MAX_PHOTOS = 10, 30


def check_photos(files: list[str] | None, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
    if not files:
        raise gr.Error(f"Upload {MIN_PHOTOS}-{MAX_PHOTOS} photos of yourself first.")
    if len(files) > MAX_PHOTOS:
        raise gr.Error(f"You uploaded {len(files)} photos; the limit is {MAX_PHOTOS}. Remove some and check again.")
    expire()  # other sessions' idle folders go, whatever happens to this request
    session = _session(request).ensure()
    session.clear_photos()  # a new check replaces the previous set
    stored = session.add_photos(files, move=False)
    report = check_capture(stored, progress=True)
    report_file = session.dir / "capture.json"
    report_file.write_text(json.dumps(report.to_dict(), indent=2))
    gallery = capture_gallery(report, session.previews_dir)
    choices = [(f"{p.file} ({p.verdict})", p.file) for p in report.photos if p.face is not None]
    return (
        gallery,
        set_summary(report),
        reasons_rows(report),
        gr.CheckboxGroup(choices=choices, value=report.set.selected, interactive=True),
        str(report_file),
    )


def confirm_selection(selected: list[str] | None, request: gr.Request) -> str:
    session = _session(request)
    report_file = session.dir / "capture.json"
    if not report_file.exists():
        raise gr.Error("Check your photos first.")
    known = {p["file"] for p in json.loads(report_file.read_text())["photos"]}
    chosen = [f for f in (selected or []) if f in known]
    if not chosen:
        raise gr.Error("Select at least one photo.")
    (session.dir / "selection.json").write_text(json.dumps({"selected": chosen}, indent=2))
    note = "" if len(chosen) >= MIN_PHOTOS else f" Fewer than {MIN_PHOTOS} photos usually give a weaker likeness."
    return f"**{len(chosen)} photos confirmed for training.**{note}"


def delete_photos(files: list[str] | None, gallery: list | None, request: gr.Request):
    """Delete my data: the session's folder (photos, analysis, LoRA, results, reviews, exports) and
    the web server's copies of all of it."""
    forget_session(_session(request))
    # What the page shows may include copies made from arrays (thumbnails): remove those too.
    cached = list(files or []) + [item[0] if isinstance(item, (tuple, list)) else item for item in gallery or []]
    for f in cached:
        Path(f).unlink(missing_ok=True)
    gr.Info("Your photos, model, results and exports were deleted from this server.")
    return None, [], "", [], gr.CheckboxGroup(choices=[], value=[]), None, ""


def expire_idle() -> None:
    """Remove session folders idle past the time limit (run on every page visit)."""
    expire()


def end_session(request: gr.Request) -> None:
    forget_session(_session(request))
