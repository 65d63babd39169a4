"""Generation on a tiny random-weight SDXL pipeline: seeds, per-request LoRA isolation under
concurrency, one-field iteration, limits, offline errors, long prompts and lineage.

The tiny pipeline and two LoRAs (built with peft, not trained: seeded gaussian A, random non-zero
B) are made once per session in a temp folder; nothing is downloaded (HF_HUB_OFFLINE=1).
Bit-exact comparisons hold at a fixed thread count, so the module runs torch on one thread.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from pipeline.generate import (
    GenerationSpec, Lineage, ModelUnavailable, PipelineCache, PromptTooLong, adapters_present,
    encode_prompts, generate, read_png_spec, split_prompt, vary, write_results,
)

SIZE, STEPS = 64, 2


@pytest.fixture(scope="module", autouse=True)
def _offline_one_thread():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once at import, possibly before this module runs.
    mp.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    mp.undo()


def _make_lora(base_dir, out_dir, seed: int):
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionXLPipeline.from_pretrained(str(base_dir))
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights="gaussian",
                        target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    torch.manual_seed(seed)
    pipe.unet.add_adapter(config)
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in pipe.unet.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    StableDiffusionXLPipeline.save_lora_weights(
        str(out_dir), unet_lora_layers=get_peft_model_state_dict(pipe.unet),
        unet_lora_adapter_metadata=config.to_dict())
    return out_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pipeline.tiny import build_tiny_sdxl

    root = tmp_path_factory.mktemp("tiny_generate")
    base = root / "base"
    build_tiny_sdxl(base)
    lora_a = _make_lora(base, root / "lora_a", seed=1)
    lora_b = _make_lora(base, root / "lora_b", seed=2)
    return {"base": str(base), "lora_a": str(lora_a), "lora_b": str(lora_b), "root": root}


@pytest.fixture(scope="module")
def cache():
    return PipelineCache(device="cpu")


def _spec(tiny, **kw) -> GenerationSpec:
    base = dict(prompt="a person head", negative_prompt="", preset="studio", seed=7, steps=STEPS,
                guidance_scale=5.0, width=SIZE, height=SIZE, base_model=tiny["base"],
                fields={"background": "grey", "wardrobe": "suit", "lighting": "soft",
                        "expression": "smile", "framing": "head"})
    base.update(kw)
    return GenerationSpec(**base)


def _px(result) -> np.ndarray:
    return np.asarray(result.image)


def _recompile(fields: dict) -> tuple[str, str]:
    return ("a person head, " + ", ".join(f"{k} {v}" for k, v in sorted(fields.items())), "blurry")


# 1. seeds ------------------------------------------------------------------------------------

def test_same_seed_is_bit_exact_and_other_seed_differs(tiny, cache, tmp_path):
    spec = _spec(tiny)
    a = generate(spec, cache=cache, out_dir=tmp_path)[0]
    b = generate(spec, cache=cache)[0]
    c = generate(spec.with_seed(8), cache=cache)[0]
    assert a.seed == 7 and c.seed == 8
    assert np.array_equal(_px(a), _px(b))
    assert not np.array_equal(_px(a), _px(c))
    meta = read_png_spec(a.image_path)
    assert meta["seed"] == 7 and GenerationSpec.from_dict(meta["spec"]) == spec
    assert a.base_model == tiny["base"] and a.pipeline_class == "StableDiffusionXLPipeline"


def test_n_images_use_consecutive_seeds_each_reproducible(tiny, cache, tmp_path):
    results = generate(_spec(tiny), n=3, cache=cache, out_dir=tmp_path)
    assert [r.seed for r in results] == [7, 8, 9]
    assert len({r.id for r in results}) == 3
    again = generate(results[2].spec, cache=cache)[0]
    assert np.array_equal(_px(again), _px(results[2]))
    data = write_results(results, tmp_path).read_text()
    assert '"seed": 9' in data


def test_spec_id_is_stable(tiny):
    s1, s2 = _spec(tiny), _spec(tiny)
    assert s1.spec_id() == s2.spec_id() and len(s1.spec_id()) == 16
    assert s1.with_seed(8).spec_id() != s1.spec_id()
    assert GenerationSpec.from_dict(s1.to_dict()) == s1
    with pytest.raises(ValueError):
        _spec(tiny, width=65)
    with pytest.raises(ValueError):
        _spec(tiny, seed=-1)


def test_pipeline_is_loaded_once(tiny, cache):
    assert cache.get(tiny["base"]) is cache.get(tiny["base"])
    assert cache.loaded().count(tiny["base"]) == 1


# 2. LoRA -------------------------------------------------------------------------------------

def test_lora_changes_output_scale_zero_and_unload_restore_base(tiny, cache):
    base = generate(_spec(tiny), cache=cache)[0]
    with_a = generate(_spec(tiny, lora=tiny["lora_a"]), cache=cache)[0]
    assert not np.array_equal(_px(base), _px(with_a))
    assert with_a.lora == tiny["lora_a"]
    assert adapters_present(cache.get(tiny["base"])) == []
    zero = generate(_spec(tiny, lora=tiny["lora_a"], lora_scale=0.0), cache=cache)[0]
    assert np.array_equal(_px(base), _px(zero))
    after = generate(_spec(tiny), cache=cache)[0]
    assert np.array_equal(_px(base), _px(after))
    # The LoRA itself is reproducible, and a half scale lands somewhere else.
    assert np.array_equal(_px(with_a), _px(generate(_spec(tiny, lora=tiny["lora_a"]), cache=cache)[0]))
    half = generate(_spec(tiny, lora=tiny["lora_a"], lora_scale=0.5), cache=cache)[0]
    assert not np.array_equal(_px(half), _px(with_a))


def test_missing_lora_is_a_clear_error_and_leaves_no_adapter(tiny, cache, tmp_path):
    with pytest.raises(ModelUnavailable, match="LoRA"):
        generate(_spec(tiny, lora=str(tmp_path / "nope")), cache=cache)
    assert adapters_present(cache.get(tiny["base"])) == []


# 3. concurrency ------------------------------------------------------------------------------

def test_concurrent_loras_do_not_contaminate(tiny, cache):
    spec_a, spec_b = _spec(tiny, lora=tiny["lora_a"]), _spec(tiny, lora=tiny["lora_b"])
    alone_a = _px(generate(spec_a, cache=cache)[0])
    alone_b = _px(generate(spec_b, cache=cache)[0])
    alone_base = _px(generate(_spec(tiny), cache=cache)[0])
    assert not np.array_equal(alone_a, alone_b)
    jobs = [spec_a, spec_b, _spec(tiny), spec_b, spec_a, _spec(tiny)]
    start = threading.Barrier(len(jobs))

    def run(spec):
        start.wait()
        return _px(generate(spec, cache=cache)[0])

    with ThreadPoolExecutor(len(jobs)) as pool:
        outs = list(pool.map(run, jobs))
    expected = [alone_a, alone_b, alone_base, alone_b, alone_a, alone_base]
    for got, want in zip(outs, expected):
        assert np.array_equal(got, want)
    assert adapters_present(cache.get(tiny["base"])) == []


# 4. vary -------------------------------------------------------------------------------------

def test_vary_changes_exactly_one_field_and_keeps_seed(tiny):
    spec = _spec(tiny, lora=tiny["lora_a"])
    specs = vary(spec, "background", ["white", "office", "grey"], recompile=_recompile)
    assert [s.fields["background"] for s in specs] == ["white", "office", "grey"]
    for s in specs:
        assert s.seed == spec.seed and s.lora == spec.lora
        assert s.diff(spec) <= {"fields.background"}
        assert "background " + s.fields["background"] in s.prompt
    assert specs[0].diff(spec) == {"fields.background"}
    knobs = vary(spec, "guidance_scale", [3, 7.5])
    assert [k.guidance_scale for k in knobs] == [3.0, 7.5]
    assert all(k.diff(spec) == {"guidance_scale"} and k.prompt == spec.prompt for k in knobs)


@pytest.mark.parametrize("field_name, values, message", [
    ("seed", [1, 2], "seed"),
    ("hairstyle", ["bob"], "cannot vary"),
    ("background,lighting", ["a"], "exactly one"),
    ("width", [128], "cannot vary"),
    ("background", [], "at least one"),
    ("steps", [2.5], "integer"),
])
def test_vary_rejects(tiny, field_name, values, message):
    with pytest.raises(ValueError, match=message):
        vary(_spec(tiny), field_name, values, recompile=_recompile)


def test_vary_prompt_field_needs_recompile(tiny):
    with pytest.raises(ValueError, match="recompile"):
        vary(_spec(tiny), "lighting", ["hard"])
    with pytest.raises(ValueError):
        vary(_spec(tiny), ["background", "lighting"], ["x"], recompile=_recompile)


# 5. limits and model errors ------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 9, -1, 2.0])
def test_n_is_bounded(tiny, cache, n):
    with pytest.raises(ValueError, match="n must be"):
        generate(_spec(tiny), n=n, cache=cache)


def test_missing_local_model_is_model_unavailable(tmp_path):
    with pytest.raises(ModelUnavailable, match="HEADSHOT_BASE_MODEL"):
        PipelineCache(device="cpu").get(str(tmp_path / "no_model"))


def test_offline_hub_id_is_model_unavailable():
    with pytest.raises(ModelUnavailable, match="HF_HUB_OFFLINE"):
        PipelineCache(device="cpu").get("headshot-test-org/no-such-model")


# long prompts --------------------------------------------------------------------------------

def test_long_prompt_is_chunked_not_truncated(tiny, cache):
    pipe = cache.get(tiny["base"])
    head = "a person head"
    long_a = head + ", " + ", ".join(["a person head with skin"] * 8) + ", red"
    long_b = head + ", " + ", ".join(["a person head with skin"] * 8) + ", blue"
    chunks = split_prompt(pipe, long_a)
    assert len(chunks) >= 2 and all(len(pipe.tokenizer(c).input_ids) <= 77 for c in chunks)
    embeds = encode_prompts(pipe, _spec(tiny, prompt=long_a, negative_prompt="blurry"))
    assert embeds["prompt_embeds"].shape[1] == 77 * len(chunks)
    assert embeds["negative_prompt_embeds"].shape == embeds["prompt_embeds"].shape
    # Words past token 77 still change the image (they would be cut off if truncated).
    ra = generate(_spec(tiny, prompt=long_a), cache=cache)[0]
    rb = generate(_spec(tiny, prompt=long_b), cache=cache)[0]
    assert not np.array_equal(_px(ra), _px(rb))
    # Caller-provided chunks are honoured; an oversized chunk is an error, not a silent cut.
    given = encode_prompts(pipe, _spec(tiny, prompt=long_a, prompt_chunks=("a person head", "red")))
    assert given["prompt_embeds"].shape[1] == 154
    with pytest.raises(PromptTooLong):
        encode_prompts(pipe, _spec(tiny, prompt=long_a, prompt_chunks=(long_a,)))
    with pytest.raises(PromptTooLong):
        split_prompt(pipe, "x" * 200)


# 6. lineage ----------------------------------------------------------------------------------

def test_lineage_records_parent_child_and_reloads(tiny, cache, tmp_path):
    session = tmp_path / "session"
    lineage = Lineage(session)
    root = generate(_spec(tiny), cache=cache, out_dir=session)[0]
    lineage.record(root)
    children = []
    for spec in vary(root.spec, "background", ["white", "office"], recompile=_recompile):
        child = generate(spec, cache=cache, out_dir=session)[0]
        lineage.record(child, parent_id=root.id, field_name="background", value=spec.fields["background"])
        children.append(child)
    grandchild = generate(vary(children[0].spec, "lighting", ["hard"], recompile=_recompile)[0], cache=cache)[0]
    lineage.record(grandchild, parent_id=children[0].id, field_name="lighting", value="hard")
    with pytest.raises(KeyError):
        lineage.record(grandchild, parent_id="missing")

    reloaded = Lineage(session)
    assert len(reloaded) == 4
    assert reloaded.parent(children[1].id) == root.id
    assert sorted(reloaded.children(root.id)) == sorted(c.id for c in children)
    assert reloaded.ancestry(grandchild.id) == [grandchild.id, children[0].id, root.id]
    entry = reloaded.get(children[1].id)
    assert entry["field"] == "background" and entry["value"] == "office" and entry["seed"] == root.seed
    # Stepping back: the parent's spec regenerates the parent's image exactly.
    again = generate(reloaded.spec(root.id), cache=cache)[0]
    assert np.array_equal(_px(again), _px(root))


def test_stray_adapter_from_an_interrupted_job_is_removed(tiny, cache):
    base = _px(generate(_spec(tiny), cache=cache)[0])
    pipe = cache.get(tiny["base"])
    entry = cache.entry(tiny["base"])
    with entry.lock:  # simulate a job that died between load and cleanup
        pipe.load_lora_weights(tiny["lora_b"], adapter_name="req_crashed")
    assert adapters_present(pipe) == ["req_crashed"]
    assert np.array_equal(_px(generate(_spec(tiny), cache=cache)[0]), base)
    assert adapters_present(pipe) == []


def test_sd15_family_generates_and_chunks(tmp_path):
    from pipeline.tiny import build_tiny_sd

    build_tiny_sd(tmp_path / "sd")
    cache = PipelineCache(device="cpu")
    long_prompt = ", ".join(["a person head with skin"] * 10)
    spec = GenerationSpec(prompt=long_prompt, negative_prompt="blurry", seed=3, steps=STEPS,
                          width=SIZE, height=SIZE, base_model=str(tmp_path / "sd"))
    a, b = generate(spec, cache=cache)[0], generate(spec, cache=cache)[0]
    assert a.pipeline_class == "StableDiffusionPipeline"
    assert np.array_equal(_px(a), _px(b))
    pipe = cache.get(spec.base_model)
    chunks = split_prompt(pipe, long_prompt)
    assert len(chunks) >= 2
    assert encode_prompts(pipe, spec)["prompt_embeds"].shape[1] == 77 * len(chunks)


def test_scheduler_is_per_request_and_never_carries_over(tiny, cache):
    plain = generate(_spec(tiny), cache=cache)[0]
    dpm = generate(_spec(tiny, scheduler="DPMSolverMultistepScheduler"), cache=cache)[0]
    karras = generate(_spec(tiny, scheduler="DPMSolverMultistepScheduler",
                            scheduler_options={"use_karras_sigmas": True}), cache=cache)[0]
    after = generate(_spec(tiny), cache=cache)[0]
    assert not np.array_equal(_px(plain), _px(dpm)) and not np.array_equal(_px(dpm), _px(karras))
    assert np.array_equal(_px(plain), _px(after))
    assert generate(_spec(tiny, scheduler="DPMSolverMultistepScheduler"), cache=cache)[0].spec.scheduler == \
        "DPMSolverMultistepScheduler"
    with pytest.raises(ValueError, match="unknown scheduler"):
        generate(_spec(tiny, scheduler="NoSuchScheduler"), cache=cache)
    with pytest.raises(ValueError, match="scheduler class name"):
        _spec(tiny, scheduler="rm -rf")
