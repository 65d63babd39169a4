"""Steps 2-4 handlers: train, generate, iterate, and saving to the Hub. GPU work goes through
``@spaces.GPU`` functions whose ``duration`` comes from the work requested."""
import spaces  # noqa: F401  before anything that initialises CUDA

import dataclasses
import os
from pathlib import Path

import gradio as gr

from pipeline.errors import explain_gpu_error
from pipeline.generate import Lineage, ModelUnavailable, PromptTooLong, generate, vary
from pipeline.generate import estimate_seconds as estimate_generation_seconds
from pipeline.hub import HubError, describe_base_model, is_hub_id, save_lora_to_hub
from pipeline.presets import FIELD_NAMES, PresetError, compile_prompt, get_preset, vary_values
from pipeline.previews import lineage_caption, loss_table, result_caption, review_caption
from pipeline.review import review_many
from pipeline.session import Session
from pipeline.specs import edits_from_form, recompiler, spec_from_preset
from pipeline.train import TrainingError, config_for, estimate_seconds, pick_device, train

from . import validate
from .common import capture_reference
from .common import session_of as _session

# Tests and offline demos point these at a tiny pipeline; real runs use SDXL at its own size.
GEN_SIZE = int(os.environ.get("HEADSHOT_IMAGE_SIZE", "0")) or None
TRAIN_RESOLUTION = int(os.environ.get("HEADSHOT_TRAIN_RESOLUTION", "1024"))
# A checkpoint every this many steps (a minute or two on a GPU): a crash or restart loses at most that.
CHECKPOINT_STEPS = int(os.environ.get("HEADSHOT_CHECKPOINT_STEPS", "100"))
ON_ZERO_GPU = bool(os.environ.get("SPACES_ZERO_GPU"))
ON_SPACE = bool(os.environ.get("SPACE_ID"))
CHUNK_SECONDS = 240  # one ZeroGPU call stays well inside its cap; the next call resumes


def _gpu_error(exc: Exception, action: str) -> gr.Error | None:
    """The plain-words gr.Error for an out-of-memory or ZeroGPU quota/duration failure, else None."""
    explained = explain_gpu_error(exc, action)
    return None if explained is None else gr.Error(explained.message, title=explained.title)


def _chunk_duration(config, cancel_file, report=None) -> int:
    return int(min(CHUNK_SECONDS, estimate_seconds(config, "cuda")) + 60)


@spaces.GPU(duration=_chunk_duration)
def train_chunk(config, cancel_file: str, report=None):
    # Errors become gr.Error here, inside the GPU function: on ZeroGPU any other exception reaches
    # the caller as its bare class name ("TrainingError"), losing the message.
    try:
        return train(config, resume=True, progress=report, should_stop=lambda: Path(cancel_file).exists())
    except (TrainingError, ModelUnavailable, OSError) as exc:
        raise gr.Error(f"Training stopped: {exc}") from None
    except Exception as exc:
        friendly = _gpu_error(exc, "train")
        if friendly is None:
            raise
        raise friendly from None


def _gen_duration(spec, n, out_dir) -> int:
    return int(estimate_generation_seconds(spec, n))


@spaces.GPU(duration=_gen_duration)
def gpu_generate(spec, n, out_dir):
    # An OOM is explained here, inside the GPU function (see train_chunk); generate() has already
    # dropped the request's LoRA and freed its memory, so the next call starts clean.
    try:
        return generate(spec, n=n, out_dir=out_dir)
    except Exception as exc:
        friendly = _gpu_error(exc, "generate")
        if friendly is None:
            raise
        raise friendly from None


def base_status(base: str) -> str:
    try:
        base = validate.base_model(base)
    except gr.Error as exc:
        return f"⚠️ {exc.message}"
    return describe_base_model(base, "ZeroGPU" if ON_ZERO_GPU else pick_device().type.upper())


def _train_config(session: Session, base: str, steps, rank):
    photos = session.selected_photos()
    if not photos:
        raise gr.Error("Confirm a photo selection in step 1 first.")
    base = validate.base_model(base)
    steps = validate.whole(steps, "Steps", 1, validate.MAX_TRAIN_STEPS)
    rank = validate.whole(rank, "LoRA rank", 1, validate.MAX_RANK)
    overrides = {k: v for k, v in {"steps": steps, "rank": rank}.items() if v}
    return config_for(len(photos), base=base, photos=photos, out_dir=str(session.lora_dir),
                      resolution=TRAIN_RESOLUTION, chunk_seconds=CHUNK_SECONDS if ON_ZERO_GPU else None,
                      checkpoint_steps=CHECKPOINT_STEPS,
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
    except Exception as exc:  # ZeroGPU quota/abort raised outside the GPU function; others propagate
        friendly = _gpu_error(exc, "train")
        if friendly is None:
            raise
        raise friendly from None
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
    specs = gr.CheckboxGroup(value=list(preset.export_specs)) if preset.export_specs else gr.CheckboxGroup()
    return *dropdowns, "\n".join(preset.negative), preset.description, specs


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
    except Exception as exc:
        # First OOM / ZeroGPU quota, queue or abort (raised by spaces outside the GPU function, as
        # gr.Error, which is a ValueError): plain words. Then input errors; the rest propagates.
        friendly = _gpu_error(exc, "generate")
        if friendly is not None:
            raise friendly from None
        if isinstance(exc, gr.Error):
            raise
        if isinstance(exc, (ModelUnavailable, PromptTooLong, ValueError)):
            raise gr.Error(str(exc)) from None
        raise
    lineage = Lineage(session.dir)
    for r in results:
        lineage.record(r, parent_id=parent, field_name=field, value=label, extra=edits)
    caption = f"{field}={label}" if field else None
    return [(str(r.image_path), result_caption(r, caption)) for r in results], [r.id for r in results]


def _with_badges(session: Session, items: list[tuple[str, str]], preset: str | None) -> list[tuple[str, str]]:
    """Prefix each caption with its review badge (identity, realism, context) against the capture set."""
    reference = capture_reference(session)
    if reference is None:
        return items
    reports = review_many([path for path, _ in items], reference, preset=preset or None)
    return [(path, f"{review_caption(r)} · {caption}") for (path, caption), r in zip(items, reports)]


def generate_images(form: dict, request: gr.Request):
    session = _session(request).ensure()
    session.results_dir.mkdir(exist_ok=True)
    seed = validate.whole(form["seed"], "Seed", 0, validate.MAX_SEED, default=0)
    n = validate.whole(form["n"], "Images", 1, validate.MAX_IMAGES, default=1)
    base = validate.base_model(form["base"])
    extra, negatives = validate.text(form["extra"], "Extra prompt words"), validate.text(form["negatives"], "Negatives")
    typed = validate.text(form.get("prompt"), "Prompt").strip()
    try:
        edits = edits_from_form(form["preset"], extra, negatives)
    except PresetError as exc:
        raise gr.Error(str(exc))
    knobs = {"width": GEN_SIZE, "height": GEN_SIZE, "steps": int(os.environ.get("HEADSHOT_GEN_STEPS", "0")) or None}
    try:
        spec, _ = spec_from_preset(form["preset"], form["fields"], seed=seed, base_model=base,
                                   lora=_lora_for(session, form["lora"]), **edits, **knobs)
    except (PresetError, ValueError) as exc:
        raise gr.Error(str(exc))
    if typed and typed != spec.prompt:  # the user rewrote the prompt: send exactly that
        spec = dataclasses.replace(spec, prompt=typed)
        edits["prompt_override"] = typed
    items, ids = _run(spec, n, session, edits)
    return _with_badges(session, items, spec.preset), ids, (ids[0] if ids else None)


def iterate_row(selected: str | None, field: str, values: list[str] | None, request: gr.Request):
    if values and len(values) > validate.MAX_IMAGES:
        raise gr.Error(f"Pick at most {validate.MAX_IMAGES} values: each one is a generation.")
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
    return _with_badges(session, items, spec.preset)


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
