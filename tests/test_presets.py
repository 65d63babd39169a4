"""Presets: the shipped YAML files, validation errors, prompt compilation, token counts and chunks.

Everything is offline. Token counting uses a real transformers ``CLIPTokenizer`` built from a vocab
written here (:func:`build_clip_tokenizer`, see STACK_NOTES "Tiny diffusion pipelines").
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from transformers import CLIPTokenizer

from pipeline import presets as P
from pipeline.presets import (
    CHUNK_TOKENS, FIELD_NAMES, KNOWN_SCHEDULERS, PresetError, compile_prompt, count_tokens, estimate_tokens,
    get_preset, load_preset, load_presets, vary_values,
)

REQUIRED = ("linkedin", "corporate", "startup", "finance_law", "healthcare", "creative", "academic")
SHIPPED = sorted(f.stem for f in P.PRESETS_DIR.glob("*.yaml"))


# --- a real CLIPTokenizer, offline ----------------------------------------------------------------

def _byte_symbols() -> list[str]:
    """GPT-2 / CLIP byte-to-unicode table: the 256 symbols every byte-level BPE vocab starts with."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + len(cs) - 188)  # printable symbols keep their code; the rest go to 256+
    return [chr(c) for c in cs]


def build_clip_tokenizer(directory: Path, words: tuple[str, ...] = ("sks", "person", "photo")) -> CLIPTokenizer:
    """Write a CLIP vocab.json + merges.txt to `directory` and load it with transformers.

    The vocab is CLIP's layout: the 256 byte symbols, their ``</w>`` (end-of-word) forms, merges
    that make each of `words` one token, then ``<|startoftext|>`` and ``<|endoftext|>`` as the highest
    ids. Other text falls back to about one token per character.

    The merges grow each word from its end (``n</w>``, ``on</w>``, ``son</w>``, ...): every merge's
    right side ends a word, so no word's merges can break another word apart, whatever their order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols]
    merges: list[str] = []
    for word in dict.fromkeys(w.lower() for w in words if w.isascii() and w.isalpha()):
        suffix = word[-1] + "</w>"
        for char in reversed(word[:-1]):
            merges.append(f"{char} {suffix}")
            suffix = char + suffix
            vocab.append(suffix)
    merges = list(dict.fromkeys(merges))
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    vocab = list(dict.fromkeys(vocab))
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
    return CLIPTokenizer.from_pretrained(str(directory), model_max_length=77)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


EDIT_WORDS = ("wearing round tortoiseshell glasses with thin frames, short curly auburn hair, light freckles, "
              "a small silver lapel pin, clean shaven, soft catchlights in both eyes, relaxed shoulders")


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory) -> CLIPTokenizer:
    """Every word of the shipped presets and of EDIT_WORDS is one token, as in CLIP's real vocab."""
    words: list[str] = _words(EDIT_WORDS) + ["sks", "person"]
    for preset in load_presets().values():
        words += _words(preset.template) + [w for c in preset.negative for w in _words(c)]
        words += [w for spec in preset.fields.values() for v in spec.values for w in _words(v.text)]
    return build_clip_tokenizer(tmp_path_factory.mktemp("clip_words"), tuple(words))


@pytest.fixture(scope="module")
def byte_tokenizer(tmp_path_factory) -> CLIPTokenizer:
    """No merges at all: one token per character, the most any byte-level BPE can produce."""
    return build_clip_tokenizer(tmp_path_factory.mktemp("clip_bytes"), ())


# --- the shipped presets --------------------------------------------------------------------------

def test_shipped_presets_load():
    presets = load_presets()
    assert len(presets) >= 7
    assert set(REQUIRED) <= set(presets)
    assert sorted(presets) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_preset_is_complete(name):
    preset = load_preset(P.PRESETS_DIR / f"{name}.yaml")
    assert preset == get_preset(name)
    assert set(FIELD_NAMES) <= set(preset.fields)
    assert "{trigger}" in preset.template and "{class_word}" in preset.template
    for field, spec in preset.fields.items():
        assert f"{{{field}}}" in preset.template
        assert spec.default in spec.ids
        assert len(spec.values) >= 3, f"{name}.{field}: a field needs real choices"
        assert vary_values(preset, field) == spec.ids
    backgrounds = preset.fields["background"]
    assert all(v.rgb is not None for v in backgrounds.values), "review needs every backdrop's colour"
    assert backgrounds.get(backgrounds.default).rgb == preset.output.background_rgb
    assert len(preset.negative) >= 10 and all(c.startswith("no ") for c in preset.negative)
    assert preset.sampler.width % 64 == 0 and preset.sampler.height % 64 == 0
    # The generated frame and the delivered crop have nearly the same shape, so framing crops little.
    assert abs(preset.sampler.width / preset.sampler.height - preset.output.aspect_ratio) < 0.05


def test_known_schedulers_exist_in_installed_diffusers():
    # Read diffusers' source instead of importing it (which pulls torch, ~5 s).
    root = Path(importlib.util.find_spec("diffusers").submodule_search_locations[0]) / "schedulers"
    source = "\n".join(p.read_text(encoding="utf-8") for p in root.rglob("*.py"))
    assert not [n for n in KNOWN_SCHEDULERS if f"class {n}(" not in source]


def test_presets_are_immutable():
    preset = get_preset("linkedin")
    with pytest.raises(ValidationError):
        preset.version = 2
    with pytest.raises(TypeError):
        preset.fields["background"] = preset.fields["framing"]
    with pytest.raises(TypeError):
        preset.sampler.scheduler_options["use_karras_sigmas"] = False
    load_presets().clear()  # the returned dict is the caller's own
    assert "linkedin" in load_presets()
    assert P.Preset.model_validate(preset.model_dump()) == preset
    assert hash(preset) == hash(copy.deepcopy(preset))


def test_edited_file_is_reloaded(tmp_path):
    src = (P.PRESETS_DIR / "linkedin.yaml").read_text(encoding="utf-8")
    (tmp_path / "linkedin.yaml").write_text(src, encoding="utf-8")
    assert load_presets(tmp_path)["linkedin"].version == 1
    (tmp_path / "linkedin.yaml").write_text(src.replace("version: 1", "version: 12"), encoding="utf-8")
    assert load_presets(tmp_path)["linkedin"].version == 12


# --- compilation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_compile_defaults(name):
    preset = get_preset(name)
    c = compile_prompt(preset, trigger="ohwx", class_word="woman")
    assert "ohwx woman" in c.prompt
    assert c.fields == {f: spec.default for f, spec in preset.fields.items()}
    for field, spec in preset.fields.items():
        assert spec.get(spec.default).text in c.prompt
    phrases = c.negative_prompt.split(", ")
    assert phrases == [constraint.removeprefix("no ") for constraint in preset.negative]
    assert c.negative_constraints == preset.negative
    assert (c.preset, c.preset_version, c.token_counter) == (name, preset.version, "estimate")
    assert c.background_rgb == preset.output.background_rgb
    assert P.CompiledPrompt.model_validate_json(c.model_dump_json()) == c


CHANGES = [(name, field) for name in SHIPPED for field in FIELD_NAMES]


@pytest.mark.parametrize(("name", "field"), CHANGES, ids=[f"{n}-{f}" for n, f in CHANGES])
def test_changing_one_field_changes_only_its_text(name, field):
    preset = get_preset(name)
    spec = preset.fields[field]
    base = compile_prompt(preset)
    old = spec.get(spec.default).text
    assert base.prompt.count(old) == 1
    for value in spec.values:  # every value compiles, and swaps exactly its own text
        c = compile_prompt(preset, {field: value.id})
        assert c.prompt == base.prompt.replace(old, value.text)
        assert c.negative_prompt == base.negative_prompt
        assert c.fields == {**base.fields, field: value.id}
        if field == "background":
            assert c.background_rgb == value.rgb


def test_fields_left_out_or_none_take_the_defaults():
    preset = get_preset("corporate")
    c = compile_prompt(preset, {"background": None, "lighting": "rembrandt"})
    assert c.fields == {**{f: s.default for f, s in preset.fields.items()}, "lighting": "rembrandt"}
    assert vary_values("corporate", "lighting") == preset.fields["lighting"].ids


def test_user_edits_are_appended_and_shown_exactly():
    base = compile_prompt("linkedin")
    c = compile_prompt("linkedin", user_prompt_edits="  wearing   round glasses\n")
    assert c.prompt == base.prompt + ", wearing round glasses"
    assert c.user_prompt_edits == "wearing round glasses" and not c.prompt_overridden


def test_prompt_override_replaces_everything():
    c = compile_prompt("linkedin", prompt_override="studio photo of sks person, white shirt")
    assert c.prompt == "studio photo of sks person, white shirt" and c.prompt_overridden
    assert c.negative_prompt == compile_prompt("linkedin").negative_prompt
    with pytest.raises(PresetError, match="must contain the trigger 'sks'"):
        compile_prompt("linkedin", prompt_override="studio photo of a person")
    with pytest.raises(PresetError, match="not both"):
        compile_prompt("linkedin", user_prompt_edits="glasses", prompt_override="photo of sks person")


def test_negative_edits_add_and_remove():
    preset = get_preset("linkedin")
    c = compile_prompt(preset, user_negative_edits=["no hats", "Scarves", "no heavy makeup", "hats"],
                       remove_negative=["sunglasses", "no text"])
    assert c.negative_constraints == tuple(x for x in preset.negative if x not in ("no sunglasses", "no text")) + (
        "no hats", "no Scarves")
    assert c.negative_prompt.endswith("3d render, hats, Scarves")
    assert compile_prompt(preset, user_negative_edits="no hats").negative_constraints[-1] == "no hats"  # a lone string
    assert "sunglasses" not in c.negative_prompt and "heavy makeup" in c.negative_prompt
    with pytest.raises(PresetError) as e:
        compile_prompt(preset, remove_negative=["no hats"])
    assert e.value.problems[0].path == "remove_negative" and "no plastic skin" in str(e.value)


def test_unknown_names_list_the_allowed_ones():
    with pytest.raises(PresetError) as e:
        get_preset("linkedn")
    assert "unknown preset 'linkedn'" in str(e.value) and all(n in str(e.value) for n in REQUIRED)
    with pytest.raises(PresetError) as e:
        compile_prompt("linkedin", {"hair": "short"})
    assert e.value.problems[0].path == "fields.hair" and all(f in str(e.value) for f in FIELD_NAMES)
    with pytest.raises(PresetError) as e:
        compile_prompt("linkedin", {"background": "blue"})
    assert e.value.problems[0].path == "fields.background"
    assert all(i in str(e.value) for i in get_preset("linkedin").fields["background"].ids)
    with pytest.raises(PresetError, match="unknown field; fields: background"):
        vary_values(get_preset("linkedin"), "hair")


@pytest.mark.parametrize(("trigger", "class_word"), [("", "person"), ("two words", "person"), ("sks,", "person"),
                                                     ("sks", ""), ("sks", "man, woman"), ("sks", "{x}")])
def test_bad_trigger_or_class_word(trigger, class_word):
    with pytest.raises(PresetError):
        compile_prompt("linkedin", trigger=trigger, class_word=class_word)


# --- broken files -----------------------------------------------------------------------------------

def _set(path: str, value):
    """A mutation of the parsed linkedin preset: set `path` (dots; ints index lists) to `value`."""
    def mutate(data: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        for p in parents:
            data = data[p]
        data[last] = value
    return mutate


def _drop(path: str):
    def mutate(data: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            data = data[p]
        del data[last]
    return mutate


def _template(old: str, new: str):
    return lambda data: data.update(template=data["template"].replace(old, new))


BROKEN = {  # case: (mutation of the parsed YAML, expected key path, expected words in the problem)
    "missing_trigger": (_template("{trigger} ", ""), "template", "missing placeholder(s) {trigger}"),
    "unknown_placeholder": (_template("{framing}", "{framing}, {hair}"), "template", "unknown placeholder(s) {hair}"),
    "unused_field": (_template("{lighting}, ", ""), "template", "missing placeholder(s) {lighting}"),
    "format_spec": (_template("{framing}", "{framing:>9}"), "template", "no format spec"),
    "default_not_a_value": (_set("fields.background.default", "blue"), "fields.background.default",
                            "'blue' is not one of the values: light_grey_seamless"),
    "duplicate_value_id": (_set("fields.lighting.values.2.id", "soft_octabox"), "fields.lighting.values[2].id",
                           "duplicate value id 'soft_octabox'"),
    "bad_value_id": (_set("fields.lighting.values.0.id", "Soft Key"), "fields.lighting.values[0].id", "pattern"),
    "extra_key": (_set("sampler.seed", 7), "sampler.seed", "unknown key; allowed keys: steps, guidance_scale"),
    "extra_top_key": (_set("colour", "red"), "colour", "unknown key; allowed keys: name, title"),
    "extra_value_key": (_set("fields.wardrobe.values.1.colour", "red"), "fields.wardrobe.values[1].colour",
                        "allowed keys: id, text, label, rgb"),
    "missing_key": (_drop("sampler.steps"), "sampler.steps", "required key is missing"),
    "missing_field": (_drop("fields.expression"), "fields", "missing field(s) expression"),
    "width_not_multiple_of_8": (_set("sampler.width", 1020), "sampler.width", "not a multiple of 8"),
    "width_too_small": (_set("sampler.width", 448), "sampler.width", "greater than or equal to 512"),
    "height_too_large": (_set("sampler.height", 2112), "sampler.height", "less than or equal to 2048"),
    "steps_out_of_range": (_set("sampler.steps", 151), "sampler.steps", "less than or equal to 150"),
    "guidance_out_of_range": (_set("sampler.guidance_scale", 31), "sampler.guidance_scale", "less than or equal to 30"),
    "unknown_scheduler": (_set("sampler.scheduler", "DPM++ 2M"), "sampler.scheduler", "unknown scheduler 'DPM++ 2M'"),
    "negation_in_text": (_set("fields.wardrobe.values.0.text", "navy blazer without a tie"),
                         "fields.wardrobe.values[0].text", "contains 'without'"),
    "constraint_not_no": (_set("negative.0", "plastic skin"), "negative[0]", "must read 'no <thing>'"),
    "duplicate_constraint": (_set("negative.1", "No  plastic skin"), "negative[1]", "duplicate constraint"),
    "rgb_out_of_range": (_set("output.background_rgb", [200, 300, 200]), "output.background_rgb[1]", "less than or equal to 255"),
    "backdrop_mismatch": (_set("output.background_rgb", [0, 0, 0]), "output.background_rgb", "differs from the default background"),
    "head_outside_frame": (_set("output.head_height", 0.9), "output.head_height", "crown outside the frame"),
    "bad_aspect": (_set("output.aspect", "square"), "output.aspect", "is not an aspect like"),
    "name_mismatch": (_set("name", "linked_in"), "name", "does not match the file name 'linkedin.yaml'"),
    "wrong_type": (_set("version", "one"), "version", "valid integer"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_preset_names_file_path_and_problem(tmp_path, case):
    mutate, path, problem = BROKEN[case]
    data = yaml.safe_load((P.PRESETS_DIR / "linkedin.yaml").read_text(encoding="utf-8"))
    mutate(data)
    file = tmp_path / "linkedin.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(PresetError) as e:
        load_preset(file)
    assert [p.path for p in e.value.problems] == [path]
    assert problem in e.value.problems[0].message
    assert str(e.value).startswith(f"{file}: {path}: ")


BROKEN_TEXT = {  # case: (text edit of the linkedin file, expected key path or location, expected problem)
    "yaml_syntax": (lambda s: s.replace("  steps: 30", "  steps: [30"), "line ", "invalid YAML"),
    "duplicate_key": (lambda s: s.replace("  steps: 30", "  steps: 30\n  steps: 40"), "line ", "duplicate key 'steps'"),
    "not_a_mapping": (lambda s: "- linkedin\n- corporate\n", "(root)", "expected a mapping of preset keys"),
    "empty_file": (lambda s: "", "(root)", "got an empty file"),
    "unquoted_aspect": (lambda s: s.replace('aspect: "1:1"', "aspect: 4:5"), "output.aspect", "write the aspect in quotes"),
}


def test_multiple_of_8_but_not_64_loads_with_a_warning(tmp_path, caplog):
    src = (P.PRESETS_DIR / "linkedin.yaml").read_text(encoding="utf-8")
    (tmp_path / "linkedin.yaml").write_text(src.replace("width: 1024", "width: 1000"), encoding="utf-8")
    assert load_preset(tmp_path / "linkedin.yaml").sampler.width == 1000
    assert "not a multiple of 64" in caplog.text


@pytest.mark.parametrize("case", BROKEN_TEXT)
def test_broken_yaml_text(tmp_path, case):
    edit, path, problem = BROKEN_TEXT[case]
    file = tmp_path / "linkedin.yaml"
    file.write_text(edit((P.PRESETS_DIR / "linkedin.yaml").read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PresetError) as e:
        load_preset(file)
    (found,) = e.value.problems
    assert found.source == str(file) and found.path.startswith(path) and problem in found.message


def test_directory_reports_every_broken_file(tmp_path):
    src = (P.PRESETS_DIR / "linkedin.yaml").read_text(encoding="utf-8")
    (tmp_path / "linkedin.yaml").write_text(src.replace("width: 1024", "width: 1004"), encoding="utf-8")
    (tmp_path / "other.yaml").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "team.yaml").write_text("not: a preset", encoding="utf-8")  # subfolders are not read
    with pytest.raises(PresetError) as e:
        load_presets(tmp_path)
    assert {(Path(p.source).name, p.path) for p in e.value.problems} == {("linkedin.yaml", "sampler.width"),
                                                                        ("other.yaml", "(root)")}
    with pytest.raises(PresetError, match="not a directory"):
        load_presets(tmp_path / "missing")


# --- tokens and chunks -------------------------------------------------------------------------------

def test_tokenizer_builder_makes_a_real_clip_tokenizer(word_tokenizer, byte_tokenizer):
    ids = word_tokenizer("photo of sks person").input_ids
    assert ids[0] == word_tokenizer.bos_token_id == len(word_tokenizer) - 2
    assert ids[-1] == word_tokenizer.eos_token_id == len(word_tokenizer) - 1
    assert word_tokenizer.tokenize("sks person") == ["sks</w>", "person</w>"]
    assert len(byte_tokenizer.tokenize("sks person")) == len("sksperson")


@pytest.mark.parametrize("name", SHIPPED)
def test_word_by_word_count_equals_whole_text_count(name, word_tokenizer, byte_tokenizer):
    # count_tokens counts word by word; this is exact only because CLIP never merges across spaces.
    c = compile_prompt(name, user_prompt_edits=EDIT_WORDS, tokenizer=word_tokenizer)
    for tok in (word_tokenizer, byte_tokenizer):
        for text in (c.prompt, c.negative_prompt):
            assert count_tokens(text, tok) == len(tok(text, add_special_tokens=False).input_ids)


@pytest.mark.parametrize("name", SHIPPED)
def test_long_prompt_is_chunked_at_commas_and_nothing_is_dropped(name, word_tokenizer):
    c = compile_prompt(name, user_prompt_edits=EDIT_WORDS, user_negative_edits=["no hats", "no scarves"],
                       tokenizer=word_tokenizer)
    assert c.token_counter == "tokenizer"
    for text, chunks, total in ((c.prompt, c.prompt_chunks, c.token_counts["prompt"]),
                                (c.negative_prompt, c.negative_chunks, c.token_counts["negative"])):
        assert total == len(word_tokenizer(text, add_special_tokens=False).input_ids)
        assert " ".join(chunks) == text  # nothing dropped, nothing added
        sizes = [len(word_tokenizer(chunk, add_special_tokens=False).input_ids) for chunk in chunks]
        assert max(sizes) <= CHUNK_TOKENS and sum(sizes) == total
        assert all(len(word_tokenizer(chunk).input_ids) <= 77 for chunk in chunks)  # with BOS/EOS
        assert all(chunk.endswith(",") for chunk in chunks[:-1])  # broken after commas only
    assert len(c.prompt_chunks) >= 2
    assert _words(" ".join(c.prompt_chunks))[-len(_words(EDIT_WORDS)):] == _words(EDIT_WORDS)
    assert c.chunk_count == max(len(c.prompt_chunks), len(c.negative_chunks))


def test_comma_free_run_breaks_between_words(word_tokenizer):
    run = " ".join(["soft"] * 100)  # one 100-token segment with no comma
    c = compile_prompt("linkedin", user_prompt_edits=run, tokenizer=word_tokenizer, max_chunks=5)
    assert len(c.prompt_chunks) >= 3
    assert " ".join(c.prompt_chunks) == c.prompt
    assert all(len(word_tokenizer.tokenize(chunk)) <= CHUNK_TOKENS for chunk in c.prompt_chunks)
    assert sum(chunk.split().count("soft") for chunk in c.prompt_chunks) == c.prompt.split().count("soft")


def test_over_long_prompts_are_refused_with_their_count(word_tokenizer):
    edits = ", ".join(["light freckles"] * 80)  # 80 * 3 tokens on top of the preset
    with pytest.raises(PresetError) as e:
        compile_prompt("linkedin", user_prompt_edits=edits, tokenizer=word_tokenizer)
    total = count_tokens(compile_prompt("linkedin", user_prompt_edits=edits, tokenizer=word_tokenizer,
                                        max_chunks=10).prompt, word_tokenizer)
    assert e.value.problems[0].path == "prompt"
    assert f"{total} tokens (counted)" in str(e.value) and "limit of 3 (225 tokens)" in str(e.value)
    with pytest.raises(PresetError) as e:
        compile_prompt("linkedin", user_negative_edits=[f"freckles {i}" for i in range(90)], tokenizer=word_tokenizer)
    assert e.value.problems[0].path == "negative_prompt"
    with pytest.raises(PresetError, match="alone is 80 tokens"):
        compile_prompt("linkedin", user_prompt_edits="x" * 80, tokenizer=word_tokenizer)  # one 80-character word
    with pytest.raises(PresetError, match=r"tokens \(estimated\)"):
        compile_prompt("linkedin", user_prompt_edits=edits)


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0), ("sks", 1), ("person", 2), ("photorealistic", 4), ("85mm", 3), ("f/2.8", 5),
    ("true-to-life", 5), ("person's", 3), ("light grey, seamless", 6), ("Élodie", 2),
])
def test_estimate_follows_its_documented_rule(text, expected):
    assert estimate_tokens(text) == expected


# Token counts from the real CLIP BPE vocabulary (openai/clip-vit-large-patch14, the vocab both SDXL
# tokenizers use), measured once with transformers' CLIPTokenizer; the vocab is not available offline.
REAL_CLIP_COUNTS = {
    "professional LinkedIn profile headshot photo of sks person": 8,
    "tailored navy blazer over a crisp white shirt": 8,
    "soft diffused key light from a large octabox, gentle fill light, subtle hair light": 19,
    "exaggerated cheekbones, oversaturated colors, oversharpening, airbrushed skin": 17,
    "85mm portrait lens, natural skin texture, true-to-life colors, sharp focus on the eyes": 22,
    "softly blurred wood-panelled library with bookshelves, shallow depth of field": 15,
    "wearing round tortoiseshell glasses, salt-and-pepper beard, Canon EOS R5, f/2.8": 25,
}


@pytest.mark.parametrize("text", REAL_CLIP_COUNTS)
def test_estimate_is_conservative_for_english_prompts(text):
    assert REAL_CLIP_COUNTS[text] <= estimate_tokens(text) <= 2 * REAL_CLIP_COUNTS[text]


@pytest.mark.parametrize("name", SHIPPED)
def test_estimate_lies_between_the_bpe_bounds(name, word_tokenizer, byte_tokenizer):
    # Any CLIP vocab gives at least one token per pre-token (word, digit, symbol) and at most one per byte.
    c = compile_prompt(name, user_prompt_edits=EDIT_WORDS)
    pre = word_tokenizer.backend_tokenizer.pre_tokenizer
    for text in (c.prompt, c.negative_prompt):
        assert len(pre.pre_tokenize_str(text.lower())) <= estimate_tokens(text) <= count_tokens(text, byte_tokenizer)
    assert max(estimate_tokens(chunk) for chunk in c.prompt_chunks + c.negative_chunks) <= CHUNK_TOKENS
