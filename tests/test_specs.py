"""Specs from presets: sampler defaults, overrides, the user's edits and one-field iteration."""
import pytest

from pipeline.generate import vary
from pipeline.presets import get_preset
from pipeline.specs import edits_from_form, recompiler, spec_from_preset


def test_spec_takes_sampler_defaults_and_overrides_win():
    preset = get_preset("corporate")
    spec, compiled = spec_from_preset(preset, {"background": "dark_charcoal"}, seed=3, base_model="/models/x")
    assert (spec.steps, spec.width, spec.height) == (preset.sampler.steps, preset.sampler.width, preset.sampler.height)
    assert spec.fields["background"] == "dark_charcoal" and spec.prompt == compiled.prompt
    assert spec.scheduler == preset.sampler.scheduler and spec.scheduler_options == dict(preset.sampler.scheduler_options)
    small, _ = spec_from_preset(preset, seed=3, base_model="/models/x", width=64, height=64, steps=2)
    assert (small.width, small.height, small.steps) == (64, 64, 2)
    with pytest.raises(ValueError, match="unknown overrides"):
        spec_from_preset(preset, seed=3, base_model="/models/x", sampler="ddim")


@pytest.mark.parametrize("kept,extra_lines,expect_removed,expect_added", [
    (slice(None), [], None, None),
    (slice(1, None), [], 1, None),
    (slice(None), ["no hats"], None, ["no hats"]),
])
def test_edits_from_form(kept, extra_lines, expect_removed, expect_added):
    preset = get_preset("linkedin")
    lines = list(preset.negative)[kept] + extra_lines
    edits = edits_from_form(preset, "  studio portrait  ", "\n".join(lines))
    assert edits["user_prompt_edits"] == "studio portrait"
    assert edits["user_negative_edits"] == expect_added
    assert edits["remove_negative"] == (list(preset.negative)[:expect_removed] if expect_removed else None)


def test_iteration_keeps_the_users_edits_and_changes_one_field():
    edits = edits_from_form("linkedin", "film grain", "no hats")
    spec, _ = spec_from_preset("linkedin", seed=9, base_model="/models/x", **edits)
    assert "film grain" in spec.prompt and "hats" in spec.negative_prompt
    row = vary(spec, "background", ["white_seamless", "dark_charcoal"], recompile=recompiler("linkedin", **edits))
    for varied in row:
        assert varied.diff(spec) == {"fields.background"} and varied.seed == 9
        assert "film grain" in varied.prompt and varied.negative_prompt == spec.negative_prompt
        assert {k: v for k, v in varied.fields.items() if k != "background"} == \
               {k: v for k, v in spec.fields.items() if k != "background"}
