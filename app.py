"""Headshot Studio: the Gradio Blocks app. UI wiring only; all image logic lives in pipeline/."""
import spaces  # noqa: F401  On ZeroGPU this must be imported before anything initialises CUDA.

import argparse
import json
import logging
import os
from pathlib import Path

import gradio as gr

from pipeline.capture import check_capture, warm_up
from pipeline.previews import capture_gallery, reasons_rows
from pipeline.session import Session, expire

MIN_PHOTOS, MAX_PHOTOS = 10, 30
MAX_FILE_SIZE = "40mb"  # the same byte limit as pipeline.intake.IntakeLimits
ASSETS = Path(__file__).parent / "assets"
TABLE_HEADERS = ["file", "verdict", "selected", "pose", "reasons (measured vs threshold)"]
LATER_STEPS = {
    "2 · Train": "training a personal LoRA on the photos you confirm in step 1",
    "3 · Generate": "headshots from style presets with editable prompts and negative constraints",
    "4 · Iterate": "changing one variable at a time (background, wardrobe, lighting, expression, crop)",
    "5 · Review": "the identity, realism and context check with platform previews",
    "6 · Export": "file specs with sRGB, IPTC metadata and a signed C2PA manifest",
    "7 · Teams": "style guides, standardisation, approvals, consent and retention",
}


def _session(request: gr.Request) -> Session:
    return Session(request.session_hash)


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
        _summary(report),
        reasons_rows(report),
        gr.CheckboxGroup(choices=choices, value=report.set.selected, interactive=True),
        str(report_file),
    )


def _summary(report) -> str:
    s = report.set
    icon = {"accept": "✅", "warn": "⚠️", "reject": "❌"}[s.verdict]
    lines = [f"### {icon} Capture set: {s.verdict.upper()}",
             f"{s.usable} usable of {s.total} photos · {len(s.selected)} selected for training"]
    lines += [f"- **{r.code}**: {r.message}" for r in s.reasons]
    coverage = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.pose_coverage.items())
    lines.append(f"\n**Poses covered:** {coverage}")
    if s.advice:
        lines.append("\n**What to do next**")
        lines += [f"- {a}" for a in s.advice]
    return "\n".join(lines)


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
    _session(request).delete()
    # The web server keeps its own copies: the uploads and the thumbnails it served.
    cached = list(files or []) + [item[0] if isinstance(item, (tuple, list)) else item for item in gallery or []]
    for f in cached:
        Path(f).unlink(missing_ok=True)
    gr.Info("Your photos and their analysis were deleted.")
    return None, [], "", [], gr.CheckboxGroup(choices=[], value=[]), None, ""


def end_session(request: gr.Request) -> None:
    _session(request).delete()


def build_app() -> gr.Blocks:
    # Gradio's own upload cache is swept too: files older than an hour, checked every 30 minutes.
    with gr.Blocks(title="Headshot Studio", delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# Headshot Studio\nPortraits that still look like you, made by a repeatable, honest process.")
        with gr.Tab("1 · Capture"):
            with gr.Row():
                with gr.Column(scale=2):
                    files = gr.File(label=f"Your selfies ({MIN_PHOTOS}-{MAX_PHOTOS} photos)", file_count="multiple",
                                    file_types=["image", ".heic", ".heif"], elem_id="capture-upload")
                    with gr.Row():
                        check_btn = gr.Button("Check my photos", variant="primary", elem_id="check-button")
                        delete_btn = gr.Button("Delete my photos", variant="stop", elem_id="delete-button")
                with gr.Column(scale=1):
                    with gr.Accordion("How to take good capture photos", open=True):
                        gr.Markdown((ASSETS / "capture_guide.md").read_text())
            summary = gr.Markdown(elem_id="capture-summary")
            gallery = gr.Gallery(label="Your photos", columns=5, height="auto", object_fit="contain",
                                 interactive=False, elem_id="capture-gallery")
            table = gr.Dataframe(headers=TABLE_HEADERS, label="Every check, with its measured value", wrap=True,
                                 interactive=False, elem_id="capture-table")
            selection = gr.CheckboxGroup(label="Photos for training (pre-selected: the best 10-20; change as you like)",
                                         elem_id="capture-selection")
            with gr.Row():
                confirm_btn = gr.Button("Use these photos for training", elem_id="confirm-button")
                report_file = gr.File(label="Full report (JSON)", interactive=False)
            confirmed = gr.Markdown(elem_id="capture-confirmed")
        for title, what in LATER_STEPS.items():
            with gr.Tab(title):
                gr.Markdown(f"**Not built yet.** This step will provide {what}. It is not part of this release.")

        check_btn.click(check_photos, inputs=files, outputs=[gallery, summary, table, selection, report_file],
                        api_name="check_capture")
        confirm_btn.click(confirm_selection, inputs=selection, outputs=confirmed, api_name="confirm_selection")
        delete_btn.click(delete_photos, inputs=[files, gallery],
                         outputs=[files, gallery, summary, table, selection, report_file, confirmed],
                         api_name="delete_photos")
        demo.unload(end_session)
    return demo


demo = build_app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Headshot Studio web app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warm_up()
    demo.queue(default_concurrency_limit=2).launch(
        server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE, footer_links=["api", "gradio"],
    )


if __name__ == "__main__":
    main()
