"""Headshot Studio: the Gradio Blocks app. UI wiring only; all image logic lives in pipeline/."""
import spaces  # noqa: F401  On ZeroGPU this must be imported before anything initialises CUDA.

import argparse
import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import gradio as gr

from pipeline.capture import check_capture, warm_up
from pipeline.export import EXPORT_SPECS, export_framed
from pipeline.intake import IntakeError
from pipeline.generate import Lineage, ModelUnavailable, PromptTooLong, default_base_model, generate, vary
from pipeline.generate import estimate_seconds as estimate_generation_seconds
from pipeline.presets import FIELD_NAMES, PresetError, compile_prompt, get_preset, load_presets, vary_values
from pipeline.hub import HubError, describe_base_model, is_hub_id, save_lora_to_hub
from pipeline.previews import capture_gallery, lineage_caption, loss_table, reasons_rows, result_caption, set_summary
from pipeline.session import Session, data_root, expire
from pipeline.specs import edits_from_form, recompiler, spec_from_preset
from pipeline.train import TrainingError, config_for, estimate_seconds, pick_device, train

MIN_PHOTOS, MAX_PHOTOS = 10, 30
MAX_FILE_SIZE = "40mb"  # the same byte limit as pipeline.intake.IntakeLimits
ASSETS = Path(__file__).parent / "assets"
TABLE_HEADERS = ["file", "verdict", "selected", "pose", "reasons (measured vs threshold)"]
MAX_IMAGES = 4
# Tests and offline demos point these at a tiny pipeline; real runs use SDXL at its own size.
GEN_SIZE = int(os.environ.get("HEADSHOT_IMAGE_SIZE", "0")) or None
TRAIN_RESOLUTION = int(os.environ.get("HEADSHOT_TRAIN_RESOLUTION", "1024"))
LATER_STEPS = {
    "5 · Review": "the identity, realism and context check with platform previews",
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
    _session(request).delete()
    # The web server keeps its own copies: the uploads and the thumbnails it served.
    cached = list(files or []) + [item[0] if isinstance(item, (tuple, list)) else item for item in gallery or []]
    for f in cached:
        Path(f).unlink(missing_ok=True)
    gr.Info("Your photos and their analysis were deleted.")
    return None, [], "", [], gr.CheckboxGroup(choices=[], value=[]), None, ""


def end_session(request: gr.Request) -> None:
    _session(request).delete()


# ----------------------------------------------------------------------------- train · generate · iterate
ON_ZERO_GPU = bool(os.environ.get("SPACES_ZERO_GPU"))
ON_SPACE = bool(os.environ.get("SPACE_ID"))
CHUNK_SECONDS = 240  # one ZeroGPU call stays well inside its cap; the next call resumes


def _chunk_duration(config, cancel_file, report=None) -> int:
    return int(min(CHUNK_SECONDS, estimate_seconds(config, "cuda")) + 60)


@spaces.GPU(duration=_chunk_duration)
def train_chunk(config, cancel_file: str, report=None):
    return train(config, resume=True, progress=report, should_stop=lambda: Path(cancel_file).exists())


def _gen_duration(spec, n, out_dir) -> int:
    return int(estimate_generation_seconds(spec, n))


@spaces.GPU(duration=_gen_duration)
def gpu_generate(spec, n, out_dir):
    return generate(spec, n=n, out_dir=out_dir)


def base_status(base: str) -> str:
    return describe_base_model(base, "ZeroGPU" if ON_ZERO_GPU else pick_device().type.upper())


def _train_config(session: Session, base: str, steps, rank):
    photos = session.selected_photos()
    if not photos:
        raise gr.Error("Confirm a photo selection in step 1 first.")
    overrides = {k: int(v) for k, v in {"steps": steps, "rank": rank}.items() if v}
    return config_for(len(photos), base=base, photos=photos, out_dir=str(session.lora_dir),
                      resolution=TRAIN_RESOLUTION, chunk_seconds=CHUNK_SECONDS if ON_ZERO_GPU else None,
                      alpha=overrides.get("rank", 16), **overrides)


def estimate_training(base: str, steps, rank, request: gr.Request) -> str:
    session = _session(request)
    if not session.selected_photos():
        return "Confirm a photo selection in step 1, then come back here."
    config = _train_config(session, base, steps, rank)
    minutes = estimate_seconds(config, "cuda") / 60
    return (f"{len(config.photos)} photos · {config.steps} steps · rank {config.rank} · "
            f"about **{minutes:.0f} min** on a GPU (a rough estimate).")


def start_training(base: str, steps, rank, request: gr.Request, progress=gr.Progress()):
    session = _session(request)
    config = _train_config(session, base, steps, rank)
    cancel = session.dir / "cancel"
    cancel.unlink(missing_ok=True)

    def report(step, total, loss):
        progress((step, total), desc=f"Training · loss {loss:.4f}")

    try:
        while True:  # ZeroGPU: one capped call per chunk, each resuming from the last checkpoint
            result = train_chunk(config, str(cancel), None if ON_ZERO_GPU else report)
            progress((result.step, result.steps), desc="Training")
            if result.status != "paused":
                break
    except (TrainingError, ModelUnavailable, OSError) as exc:
        raise gr.Error(f"Training stopped: {exc}")
    verb = {"finished": "finished", "cancelled": "cancelled (resume it with Train)"}[result.status]
    loss = "" if result.loss is None else f" · final loss {result.loss:.4f}"
    return f"**Training {verb}** at step {result.step} of {result.steps}{loss}.", loss_table(session.lora_dir)


def cancel_training(request: gr.Request) -> str:
    session = _session(request).ensure()
    (session.dir / "cancel").touch()
    return "Cancelling after the current step…"


def preset_controls(name: str):
    preset = get_preset(name)
    dropdowns = [gr.Dropdown(choices=[(v.label or v.id, v.id) for v in preset.fields[f].values],
                             value=preset.fields[f].default) for f in FIELD_NAMES]
    return *dropdowns, "\n".join(preset.negative), preset.description


def preview_prompt(form: dict):
    try:
        compiled = compile_prompt(form["preset"], form["fields"], **edits_from_form(form["preset"], form["extra"], form["negatives"]))
    except PresetError as exc:
        return f"⚠️ {exc}", ""
    return compiled.prompt, compiled.negative_prompt


def _lora_for(session: Session, ref: str | None) -> str | None:
    """The LoRA named in the form (a Hub id; server paths are not for users to pick), else this session's."""
    ref = (ref or "").strip()
    if ref:
        if not is_hub_id(ref):
            raise gr.Error("Enter a Hugging Face repo id like 'user/my-headshots', or leave it blank.")
        return ref
    return str(session.lora_dir) if (session.lora_dir / "pytorch_lora_weights.safetensors").exists() else None


def save_to_hub(repo_name: str, request: gr.Request, oauth_token: gr.OAuthToken | None) -> str:
    if oauth_token is None and ON_SPACE:  # never the Space's own token: the repo must be the user's
        raise gr.Error("Sign in with Hugging Face first.")
    try:
        repo = save_lora_to_hub(_session(request).lora_dir, repo_name, token=oauth_token)
    except (HubError, ModelUnavailable, ValueError) as exc:
        raise gr.Error(str(exc))
    return f"Saved to your private repo **{repo}** (weights, training.json and a model card; never your photos)."


def _run(spec, n: int, session: Session, edits: dict, parent: str | None = None, field: str | None = None, label=None):
    """Generate, record lineage, and return gallery items and result ids."""
    try:
        results = gpu_generate(spec, n, str(session.results_dir))
    except (ModelUnavailable, PromptTooLong, ValueError) as exc:
        raise gr.Error(str(exc))
    lineage = Lineage(session.dir)
    for r in results:
        lineage.record(r, parent_id=parent, field_name=field, value=label, extra=edits)
    caption = f"{field}={label}" if field else None
    return [(str(r.image_path), result_caption(r, caption)) for r in results], [r.id for r in results]


def generate_images(form: dict, request: gr.Request):
    session = _session(request).ensure()
    session.results_dir.mkdir(exist_ok=True)
    edits = edits_from_form(form["preset"], form["extra"], form["negatives"])
    knobs = {"width": GEN_SIZE, "height": GEN_SIZE, "steps": int(os.environ.get("HEADSHOT_GEN_STEPS", "0")) or None}
    try:
        spec, _ = spec_from_preset(form["preset"], form["fields"], seed=int(form["seed"]), base_model=form["base"],
                                   lora=_lora_for(session, form["lora"]), **edits, **knobs)
    except (PresetError, ValueError) as exc:
        raise gr.Error(str(exc))
    typed = (form.get("prompt") or "").strip()
    if typed and typed != spec.prompt:  # the user rewrote the prompt: send exactly that
        spec = dataclasses.replace(spec, prompt=typed)
        edits["prompt_override"] = typed
    items, ids = _run(spec, int(form["n"]), session, edits)
    return items, ids, (ids[0] if ids else None)


def iterate_row(selected: str | None, field: str, values: list[str] | None, request: gr.Request):
    if not selected:
        raise gr.Error("Pick a result in the Generate gallery first.")
    if not values:
        raise gr.Error(f"Pick at least one {field} value.")
    session = _session(request)
    lineage = Lineage(session.dir)
    spec, edits = lineage.spec(selected), dict(lineage.get(selected)["extra"])
    if edits.pop("prompt_override", None):
        raise gr.Error("This result's prompt was written by hand, so the fields no longer drive it. "
                       "Generate from the preset's prompt to iterate on one field.")
    try:
        specs = vary(spec, field, values, recompile=recompiler(spec.preset, **edits))
    except (PresetError, ValueError) as exc:
        raise gr.Error(str(exc))
    original = session.results_dir / lineage.get(selected)["image"]
    items = [(str(original), f"locked: {field}={spec.fields.get(field)} (original)")]
    for value, varied in zip(values, specs):
        more, _ = _run(varied, 1, session, edits, parent=selected, field=field, label=value)
        items += more
    return items


def field_values(selected: str | None, field: str, request: gr.Request):
    if not selected:
        return gr.Dropdown(choices=[], value=[])
    spec = Lineage(_session(request).dir).spec(selected)
    choices = [v for v in vary_values(spec.preset, field) if v != spec.fields.get(field)]
    return gr.Dropdown(choices=choices, value=choices[:3])


def show_selected(selected: str | None, request: gr.Request):
    if not selected:
        return None, "Nothing selected yet."
    lineage = Lineage(_session(request).dir)
    entry = lineage.get(selected)
    return str(_session(request).results_dir / entry["image"]), lineage_caption(entry)


def step_back(selected: str | None, request: gr.Request):
    parent = Lineage(_session(request).dir).parent(selected) if selected else None
    if parent is None:
        gr.Info("This is an original result; there is nothing to step back to.")
        return selected
    return parent


def export_files(spec_names: list[str], first: str, last: str, real: bool, uploads: list[str] | None,
                 request: gr.Request, progress=gr.Progress(track_tqdm=True)):
    session = _session(request).ensure()
    if uploads:
        images = {Path(f).stem: f for f in uploads}
    else:  # this session's results: the approved ones once a review has approved any
        lineage, approved = Lineage(session.dir), session.approved()
        images = {i: str(session.results_dir / lineage.get(i)["image"]) for i in lineage.ids()
                  if not approved or i in approved}
    if not images:
        raise gr.Error("Upload images to export, or generate results first.")
    if not spec_names:
        raise gr.Error("Pick at least one file spec.")
    out = session.dir / "export"
    shutil.rmtree(out, ignore_errors=True)
    try:
        zip_path, unframed = export_framed(images, spec_names, out, person={"first": first, "last": last},
                                           generated=not real, data_dir=data_root())
    except (IntakeError, ValueError) as exc:
        raise gr.Error(str(exc))
    if unframed:
        gr.Warning(f"{len(unframed)} image(s) had no face to frame and were centre-cropped.")
    return str(zip_path), json.loads((out / "manifest.json").read_text())


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
                n_sl = gr.Slider(1, MAX_IMAGES, value=1, step=1, label="Images")
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
        for title, what in LATER_STEPS.items():
            with gr.Tab(title):
                gr.Markdown(f"**Not built yet.** This step will provide {what}. It is not part of this release.")

        check_btn.click(check_photos, inputs=files, outputs=[gallery, summary, table, selection, report_file],
                        api_name="check_capture")
        confirm_btn.click(confirm_selection, inputs=selection, outputs=confirmed, api_name="confirm_selection")
        delete_btn.click(delete_photos, inputs=[files, gallery],
                         outputs=[files, gallery, summary, table, selection, report_file, confirmed],
                         api_name="delete_photos")
        # Train
        demo.load(base_status, base_tb, base_status_md)
        base_tb.change(base_status, base_tb, base_status_md)
        for trigger in (train_tab.select, steps_nb.change, rank_nb.change, confirm_btn.click):
            trigger(estimate_training, [base_tb, steps_nb, rank_nb], estimate_md)
        train_btn.click(start_training, [base_tb, steps_nb, rank_nb], [train_md, loss_plot], api_name="train")
        cancel_btn.click(cancel_training, None, train_md, api_name="cancel_training")
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

        preset_loaded = demo.load(preset_controls, preset_dd, [*field_dds, negative_tb, preset_md])
        preset_dd.change(preset_controls, preset_dd, [*field_dds, negative_tb, preset_md])
        preset_loaded.then(on_preview, form_inputs, [prompt_out, negative_out])
        for component in (preset_dd, extra_tb, negative_tb, *field_dds):
            component.change(on_preview, form_inputs, [prompt_out, negative_out])
        gen_btn.click(on_generate, form_inputs, [gen_gallery, result_ids, selected_id], api_name="generate")
        gen_gallery.select(on_pick, result_ids, selected_id)

        # Iterate
        selected_id.change(show_selected, selected_id, [selected_img, selected_md])
        selected_id.change(field_values, [selected_id, field_radio], values_cb)
        field_radio.change(field_values, [selected_id, field_radio], values_cb)
        row_btn.click(iterate_row, [selected_id, field_radio, values_cb], row_gallery, api_name="iterate")
        back_btn.click(step_back, selected_id, selected_id)
        export_btn.click(export_files, [specs_cb, first_tb, last_tb, real_cb, uploads], [bundle, manifest_json],
                         api_name="export")
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
