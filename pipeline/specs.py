"""Generation specs from presets: the bridge between preset data and the generator."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from .generate import GenerationSpec, default_base_model
from .presets import CompiledPrompt, Preset, compile_prompt, get_preset


def spec_from_preset(preset: Preset | str, fields: Mapping[str, str] | None = None, *, seed: int = 0,
                     base_model: str | None = None, lora: str | None = None, trigger: str = "sks",
                     class_word: str = "person", user_prompt_edits: str | None = None,
                     user_negative_edits: Sequence[str] | None = None, remove_negative: Sequence[str] | None = None,
                     tokenizer=None, **overrides) -> tuple[GenerationSpec, CompiledPrompt]:
    """Compile ``preset`` with ``fields`` into a spec; sampler defaults come from the preset and
    ``overrides`` (steps, guidance_scale, width, height, lora_scale) win over them."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    compiled = compile_prompt(preset, fields, user_prompt_edits, user_negative_edits, trigger=trigger,
                              class_word=class_word, tokenizer=tokenizer, remove_negative=remove_negative)
    sampler = preset.sampler
    knobs = {"steps": sampler.steps, "guidance_scale": sampler.guidance_scale, "width": sampler.width,
             "height": sampler.height, "lora_scale": sampler.lora_scale}
    unknown = set(overrides) - set(knobs)
    if unknown:
        raise ValueError(f"unknown overrides {sorted(unknown)}; allowed: {sorted(knobs)}")
    knobs.update({k: v for k, v in overrides.items() if v is not None})
    spec = GenerationSpec(
        prompt=compiled.prompt, negative_prompt=compiled.negative_prompt, preset=preset.name,
        fields=dict(compiled.fields), seed=seed, base_model=base_model or default_base_model(), lora=lora,
        scheduler=sampler.scheduler, scheduler_options=dict(sampler.scheduler_options), **knobs,
    )  # no prompt_chunks: the generator splits with the loaded model's own tokenizer, which is exact
    return spec, compiled


def recompiler(preset: Preset | str, *, trigger: str = "sks", class_word: str = "person",
               user_prompt_edits: str | None = None, user_negative_edits: Sequence[str] | None = None,
               remove_negative: Sequence[str] | None = None, tokenizer=None) -> Callable[[dict], tuple[str, str]]:
    """``recompile(fields)`` for :func:`pipeline.generate.vary`: the same preset and edits, new fields."""
    preset = get_preset(preset) if isinstance(preset, str) else preset

    def recompile(fields: dict) -> tuple[str, str]:
        c = compile_prompt(preset, fields, user_prompt_edits, user_negative_edits, trigger=trigger,
                           class_word=class_word, tokenizer=tokenizer, remove_negative=remove_negative)
        return c.prompt, c.negative_prompt

    return recompile


def edits_from_form(preset: Preset | str, extra: str | None, negatives_text: str | None) -> dict:
    """A user's edits as compile_prompt takes them. ``negatives_text`` is the preset's constraints,
    one per line, as the user left them: lines they added are added, lines they deleted are removed."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    lines = [line.strip() for line in (negatives_text or "").splitlines() if line.strip()]
    return {"user_prompt_edits": (extra or "").strip() or None,
            "user_negative_edits": [c for c in lines if c not in preset.negative] or None,
            "remove_negative": [c for c in preset.negative if c not in lines] or None}
