"""Headshot Studio: the Gradio Blocks app. UI wiring only; all image logic lives in pipeline/."""
import spaces  # noqa: F401  On ZeroGPU this must be imported before anything initialises CUDA.

import argparse
import logging
import os
from pathlib import Path

import gradio as gr

from pipeline.capture import warm_up
from pipeline.export import EXPORT_SPECS
from pipeline.generate import default_base_model
from pipeline.presets import FIELD_NAMES, get_preset, load_presets
from pipeline.session import data_root
from pipeline.team import sweep_at_start
from ui.capture import (MAX_PHOTOS, MIN_PHOTOS, check_photos, confirm_selection, delete_photos, end_session,
                        expire_idle)
from ui.engine import (ON_SPACE, base_status, cancel_training, estimate_training, field_values, generate_images,
                       iterate_row, preset_controls, preview_prompt, save_to_hub, show_selected, start_training,
                       step_back)
from ui.export import export_files
from ui.review import approve, reject, review_results, show_review
from ui import validate
from ui.team import build_team_tab, members_table, show_guide

MAX_FILE_SIZE = "40mb"  # the same byte limit as pipeline.intake.IntakeLimits
ASSETS = Path(__file__).parent / "assets"
TABLE_HEADERS = ["file", "verdict", "selected", "pose", "reasons (measured vs threshold)"]
# Queue and concurrency, chosen for the hardware (checked by benchmarks/load_bench.py, tests/test_load.py):
# - "cpu": capture, review and export are CPU-bound (face models, encoding, signing): 2 at once, one per core
#   of the 2-core host; more would only slow every user down.
# - "gpu": train, generate and iterate share ONE slot per GPU, so training and generation never run at once on
#   a card (they would fight for its memory, and LoRA loading mutates the shared pipeline).
# - the queue holds at most QUEUE_MAX_SIZE waiting events; beyond that a user gets "queue full" at once rather
#   than an unbounded wait. Progress stays on (show_progress="full") so the status tracker shows the queue position.
CPU_LIMIT, GPU_LIMIT = 2, 1
QUEUE_MAX_SIZE = int(os.environ.get("HEADSHOT_QUEUE_MAX_SIZE", "64"))
CPU_QUEUE = {"concurrency_limit": CPU_LIMIT, "concurrency_id": "cpu", "show_progress": "full"}
GPU_QUEUE = {"concurrency_limit": GPU_LIMIT, "concurrency_id": "gpu", "show_progress": "full"}


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
                        delete_btn = gr.Button("Delete my data", variant="stop", elem_id="delete-button")
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
        with gr.Tab("2 · Train") as train_tab:
            base_status_md = gr.Markdown(elem_id="base-status")
            with gr.Row():
                base_tb = gr.Textbox(value=default_base_model(), label="Base model (Hub id or local diffusers folder)",
                                     elem_id="base-model", scale=3)
                steps_nb = gr.Number(label="Steps (blank: from set size)", precision=0, scale=1)
                rank_nb = gr.Number(label="LoRA rank (blank: 16)", precision=0, scale=1)
            estimate_md = gr.Markdown(elem_id="train-estimate")
            with gr.Row():
                train_btn = gr.Button("Train my model", variant="primary", elem_id="train-button")
                cancel_btn = gr.Button("Cancel", elem_id="cancel-button")
            train_md = gr.Markdown(elem_id="train-status")
            loss_plot = gr.LinePlot(x="step", y="loss", title="Training loss", elem_id="loss-plot")
            with gr.Row():
                if ON_SPACE:  # Hub sign-in exists on Spaces; a local install uses its own HF_TOKEN
                    gr.LoginButton()
                repo_tb = gr.Textbox(value="my-headshot-lora", label="Private repo name")
                hub_btn = gr.Button("Save my model to the Hub")
            hub_md = gr.Markdown()
        with gr.Tab("3 · Generate"):
            with gr.Row():
                preset_dd = gr.Dropdown(choices=sorted(load_presets()), value="linkedin", label="Style preset",
                                        elem_id="preset")
                seed_nb = gr.Number(value=42, precision=0, label="Seed", elem_id="seed")
                n_sl = gr.Slider(1, validate.MAX_IMAGES, value=1, step=1, label="Images")
                lora_tb = gr.Textbox(label="LoRA from the Hub (blank: the one trained here)", placeholder="user/repo")
            preset_md = gr.Markdown()
            with gr.Row():
                # Values are checked against the chosen preset when compiling, so API clients may
                # send any preset's values; the browser gets the right choices on preset change.
                field_dds = [gr.Dropdown(choices=[(v.label or v.id, v.id) for v in get_preset("linkedin").fields[f].values],
                                         value=get_preset("linkedin").fields[f].default, allow_custom_value=True,
                                         label=f.title(), elem_id=f"field-{f}") for f in FIELD_NAMES]
            with gr.Row():
                extra_tb = gr.Textbox(label="Extra prompt words (optional)", lines=2)
                negative_tb = gr.Textbox(label="Negative constraints (one per line; edit freely)", lines=6)
            with gr.Accordion("Exactly what will be sent to the model", open=False):
                prompt_out = gr.Textbox(label="Prompt (edit freely: an edited prompt is sent exactly as written)",
                                        elem_id="prompt-preview")
                negative_out = gr.Textbox(label="Negative prompt", interactive=False)
            gen_btn = gr.Button("Generate", variant="primary", elem_id="generate-button")
            gen_gallery = gr.Gallery(label="Results (click one to iterate on it)", columns=4, interactive=False,
                                     elem_id="generate-gallery")
        with gr.Tab("4 · Iterate"):
            with gr.Row():
                selected_img = gr.Image(label="Selected result", type="filepath", interactive=False, height=256)
                with gr.Column():
                    selected_md = gr.Markdown("Nothing selected yet.", elem_id="selected-info")
                    field_radio = gr.Radio(list(FIELD_NAMES), value="background", label="Change only this",
                                           elem_id="iterate-field")
                    values_cb = gr.Dropdown(label="Values to try", multiselect=True, allow_custom_value=True,
                                            elem_id="iterate-values")
                    with gr.Row():
                        row_btn = gr.Button("Make a row", variant="primary", elem_id="iterate-button")
                        back_btn = gr.Button("Step back to parent")
            row_gallery = gr.Gallery(label="One variable changed, everything else locked", columns=5,
                                     interactive=False, elem_id="iterate-gallery")
        with gr.Tab("5 · Review"):
            gr.Markdown("Every result is checked for **identity** (still you), **realism** (skin, sharpness, "
                        "eyes, colour) and **context** (framing, circle crop, backdrop). A result that fails any "
                        "layer should not be published. Click a result for its platform previews and numbers.")
            with gr.Row():
                review_preset = gr.Dropdown([""] + sorted(load_presets()), value="", label="Judge against preset")
                sort_cb = gr.Checkbox(label="Sort by identity score", value=True)
                pass_cb = gr.Checkbox(label="Only results that pass every layer")
                review_btn = gr.Button("Review my results", variant="primary", elem_id="review-button")
            review_uploads = gr.File(label="Or review these images instead", file_count="multiple",
                                     file_types=["image"])
            review_gallery = gr.Gallery(columns=5, interactive=False, elem_id="review-gallery", label="Reviewed")
            review_table = gr.Dataframe(headers=["result", "verdict", "identity", "realism", "context"], wrap=True,
                                        interactive=False, elem_id="review-table")
            with gr.Row():
                sheet_img = gr.Image(label="Where it will live: LinkedIn, directory, web bio, email", type="filepath",
                                     interactive=False)
                report_json = gr.JSON(label="Measured values")
            with gr.Row():
                approve_btn, reject_btn = gr.Button("Approve"), gr.Button("Reject")
            shortlist_md = gr.Markdown()
            review_ids, review_pick = gr.State([]), gr.State(None)
        with gr.Tab("6 · Export"):
            gr.Markdown("Exports your generated results (or images you upload here): framed head-and-shoulders, "
                        "sRGB, IPTC digital-source metadata and a signed C2PA manifest, zipped with `manifest.json`.")
            with gr.Row():
                specs_cb = gr.CheckboxGroup(list(EXPORT_SPECS), value=["linkedin", "web-bio"], label="File specs",
                                            elem_id="export-specs")
                first_tb, last_tb = gr.Textbox(label="First name"), gr.Textbox(label="Last name")
            with gr.Row():
                uploads = gr.File(label="Or export these images instead", file_count="multiple", file_types=["image"])
                real_cb = gr.Checkbox(label="These are real photos (standardised, not generated)")
            export_btn = gr.Button("Export", variant="primary", elem_id="export-button")
            with gr.Row():
                bundle = gr.File(label="Bundle (zip)", interactive=False, elem_id="export-bundle")
                manifest_json = gr.JSON(label="manifest.json")
        result_ids, selected_id = gr.State([]), gr.State(None)
        team_guide, team_guide_out, team_table_in, team_table_out = build_team_tab(CPU_QUEUE)

        check_btn.click(check_photos, inputs=files, outputs=[gallery, summary, table, selection, report_file],
                        api_name="check_capture", **CPU_QUEUE)
        confirm_btn.click(confirm_selection, inputs=selection, outputs=confirmed, api_name="confirm_selection")
        # Deleting and cancelling skip the queue: a full queue must never keep anyone's data on the server.
        delete_btn.click(delete_photos, inputs=[files, gallery],
                         outputs=[files, gallery, summary, table, selection, report_file, confirmed],
                         api_name="delete_photos", queue=False)
        # Train
        demo.load(base_status, base_tb, base_status_md)
        demo.load(expire_idle, None, None)  # every visit also sweeps other sessions' idle folders
        demo.load(show_guide, team_guide, team_guide_out).then(members_table, team_table_in, team_table_out)
        base_tb.change(base_status, base_tb, base_status_md)
        for trigger in (train_tab.select, steps_nb.change, rank_nb.change, confirm_btn.click):
            trigger(estimate_training, [base_tb, steps_nb, rank_nb], estimate_md)
        train_btn.click(start_training, [base_tb, steps_nb, rank_nb], [train_md, loss_plot], api_name="train", **GPU_QUEUE)
        cancel_btn.click(cancel_training, None, train_md, api_name="cancel_training", queue=False)
        hub_btn.click(save_to_hub, repo_tb, hub_md, api_name="save_to_hub")

        # Generate: the form's components, read as one dict
        form_inputs = {preset_dd, extra_tb, negative_tb, seed_nb, n_sl, base_tb, lora_tb, prompt_out, *field_dds}

        def form(data: dict) -> dict:
            return {"preset": data[preset_dd], "extra": data[extra_tb], "negatives": data[negative_tb],
                    "seed": data[seed_nb], "n": data[n_sl], "base": data[base_tb], "lora": data[lora_tb],
                    "prompt": data[prompt_out],
                    "fields": {f: data[dd] for f, dd in zip(FIELD_NAMES, field_dds)}}

        def on_preview(data: dict):
            return preview_prompt(form(data))

        def on_generate(data: dict, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
            return generate_images(form(data), request)

        def on_pick(ids: list[str], evt: gr.SelectData):
            return ids[evt.index] if ids and evt.index < len(ids) else None

        preset_outputs = [*field_dds, negative_tb, preset_md, specs_cb]  # a preset may pick its export specs
        preset_loaded = demo.load(preset_controls, preset_dd, preset_outputs)
        preset_dd.change(preset_controls, preset_dd, preset_outputs)
        preset_loaded.then(on_preview, form_inputs, [prompt_out, negative_out])
        for component in (preset_dd, extra_tb, negative_tb, *field_dds):
            component.change(on_preview, form_inputs, [prompt_out, negative_out])
        gen_btn.click(on_generate, form_inputs, [gen_gallery, result_ids, selected_id], api_name="generate",
                      **GPU_QUEUE)
        gen_gallery.select(on_pick, result_ids, selected_id)

        # Iterate
        selected_id.change(show_selected, selected_id, [selected_img, selected_md])
        selected_id.change(field_values, [selected_id, field_radio], values_cb)
        field_radio.change(field_values, [selected_id, field_radio], values_cb)
        row_btn.click(iterate_row, [selected_id, field_radio, values_cb], row_gallery, api_name="iterate", **GPU_QUEUE)
        back_btn.click(step_back, selected_id, selected_id)
        review_btn.click(review_results, [review_preset, sort_cb, pass_cb, review_uploads],
                         [review_gallery, review_ids, review_table],
                         api_name="review", **CPU_QUEUE)
        review_gallery.select(show_review, review_ids, [review_pick, sheet_img, report_json], **CPU_QUEUE)
        approve_btn.click(approve, review_pick, shortlist_md, api_name="approve")
        reject_btn.click(reject, review_pick, shortlist_md, api_name="reject")
        export_btn.click(export_files, [specs_cb, first_tb, last_tb, real_cb, uploads], [bundle, manifest_json],
                         api_name="export", **CPU_QUEUE)
        demo.unload(end_session)
    return demo


demo = build_app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Headshot Studio web app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    # HEADSHOT_LOG_LEVEL=DEBUG is safe to turn on: no level logs photos, prompts or tokens.
    logging.basicConfig(level=os.environ.get("HEADSHOT_LOG_LEVEL", "WARNING").upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    warm_up()
    sweep_at_start(data_root())  # retention: expired team input photos go before anyone is served
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_MAX_SIZE).launch(
        server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE, footer_links=["api", "gradio"],
    )


if __name__ == "__main__":
    main()
