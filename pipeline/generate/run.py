"""Running generation: :func:`generate`, :class:`Result`, PNG metadata and ``results.json``."""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .lora import _ADAPTER_PREFIX, _drop_adapters, _load_lora, adapters_present
from .models import PipelineCache, default_cache
from .prompts import encode_prompts
from .spec import MAX_IMAGES, PNG_META_KEY, GenerationSpec

log = logging.getLogger(__package__)


@dataclass
class Result:
    """One generated image. ``spec.seed`` is this image's seed: ``generate(result.spec)`` reproduces it."""

    id: str
    spec: GenerationSpec
    seed: int
    base_model: str
    lora: str | None
    pipeline_class: str
    device: str
    dtype: str
    seconds: float
    image_path: Path | None = None
    image: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "spec": self.spec.to_dict(), "spec_id": self.spec.spec_id(), "seed": self.seed,
            "base_model": self.base_model, "lora": self.lora, "pipeline_class": self.pipeline_class,
            "device": self.device, "dtype": self.dtype, "seconds": round(self.seconds, 4),
            "image_path": str(self.image_path) if self.image_path else None,
        }


def _save_png(image, path: Path, result: Result) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    meta = {"id": result.id, "seed": result.seed, "spec": result.spec.to_dict(), "base_model": result.base_model}
    info.add_itxt(PNG_META_KEY, json.dumps(meta, sort_keys=True))
    info.add_text("seed", str(result.seed))
    tmp = path.with_suffix(".png.part")
    image.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def read_png_spec(path: str | Path) -> dict[str, Any]:
    """The metadata :func:`generate` wrote into a PNG (``id``, ``seed``, ``spec``, ``base_model``)."""
    from PIL import Image

    with Image.open(path) as im:
        return json.loads(im.text[PNG_META_KEY])


def generate(spec: GenerationSpec, n: int = 1, cache: PipelineCache | None = None,
             out_dir: str | Path | None = None) -> list[Result]:
    """``n`` images (seeds ``spec.seed .. spec.seed + n - 1``) for ``spec``.

    The LoRA, if any, is loaded under a unique adapter name for this request only and removed
    afterwards; the pipeline's lock is held throughout (one job per pipeline at a time). With
    ``out_dir`` each image is written as ``<id>.png`` with the spec and seed in its PNG text.
    """
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
        raise ValueError(f"n must be an integer in [1, {MAX_IMAGES}], got {n!r}")
    if spec.seed + n - 1 >= 2**63:
        raise ValueError("seed + n exceeds the seed range")
    cache = cache or default_cache()
    entry = cache.entry(spec.base_model)
    pipe = entry.pipe
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with entry.lock:
        stray = adapters_present(pipe)
        if stray:  # an interrupted earlier job; never let it leak into this one
            log.warning("removing %d stray adapter(s) before generating", len(stray))
            _drop_adapters(pipe, stray)
        adapter = None
        try:
            pipe.scheduler = entry.scheduler_for(spec)
            if spec.lora:
                adapter = f"{_ADAPTER_PREFIX}{uuid.uuid4().hex}"
                _load_lora(pipe, spec.lora, adapter)
                pipe.set_adapters([adapter], adapter_weights=[float(spec.lora_scale)])
            with torch.inference_mode():
                embeds = encode_prompts(pipe, spec)
                gen_device = "cuda" if str(cache.device).startswith("cuda") else "cpu"
                for i in range(n):
                    seed = spec.seed + i
                    t0 = time.perf_counter()
                    generator = torch.Generator(gen_device).manual_seed(seed)
                    image = pipe(**embeds, num_inference_steps=spec.steps, guidance_scale=spec.guidance_scale,
                                 width=spec.width, height=spec.height, generator=generator,
                                 output_type="pil").images[0]
                    result = Result(
                        id=uuid.uuid4().hex[:16], spec=spec.with_seed(seed), seed=seed, base_model=entry.model_id,
                        lora=spec.lora, pipeline_class=type(pipe).__name__, device=str(cache.device),
                        dtype=str(cache.dtype).replace("torch.", ""), seconds=time.perf_counter() - t0, image=image)
                    if out is not None:
                        result.image_path = out / f"{result.id}.png"
                        _save_png(image, result.image_path, result)
                    results.append(result)
                    log.info("generated %s (spec %s) in %.2f s", result.id, spec.spec_id(), result.seconds)
        except torch.OutOfMemoryError:
            # Give the failed request's activations back before the next request in this process;
            # the finally below removes its adapter, so the pipeline is as it was before the call.
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise
        finally:
            if adapter is not None:
                _drop_adapters(pipe, [a for a in adapters_present(pipe) if a == adapter])
    return results


def write_results(results: Sequence[Result], out_dir: str | Path) -> Path:
    """``results.json`` in ``out_dir`` (the CLI's output contract)."""
    path = Path(out_dir) / "results.json"
    path.write_text(json.dumps({"results": [r.to_dict() for r in results]}, indent=2))
    return path


def estimate_seconds(spec: GenerationSpec, n: int = 1) -> float:
    """A rough GPU budget for ``n`` images (ZeroGPU's ``duration``): about 0.3 s per step for a
    1024x1024 SDXL image with CFG on an A100-class card, plus 30 s for loading and the VAE."""
    return 30 + n * spec.steps * 0.3 * spec.width * spec.height / 1024**2
