"""Tiny Stable Diffusion / SDXL pipelines built from configs with random weights.

They exercise the real diffusers code paths (text encoding, UNet, VAE, LoRA load/unload,
training) in seconds on a CPU and need no download. Tests, the ``--tiny`` benchmark mode and
the offline demo of the app all use them. Their images are noise: they prove plumbing, not art.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

# A byte-level BPE vocabulary: the 256 byte symbols, their end-of-word forms, a few merges,
# then the two special tokens as the highest ids (CLIP's layout).
_MERGES = ["s k", "sk s</w>", "p e", "r s", "pe rs", "o n</w>", "pers on</w>", "h e", "a d</w>", "he ad</w>"]


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 bytes (transformers 5 no longer exports them)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = [], 0
    for b in range(256):
        if b in printable:
            codes.append(b)
        else:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def write_tokenizer(directory: Path) -> Path:
    """Write a loadable CLIP tokenizer (vocab.json, merges.txt) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab_list = symbols + [s + "</w>" for s in symbols]
    for merge in _MERGES:
        merged = merge.replace(" ", "")
        if merged not in vocab_list:
            vocab_list.append(merged)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab_list)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
    }))
    return directory


def _tokenizer(directory: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(write_tokenizer(directory)))


def _text_encoder(projection: bool, vocab_size: int, hidden: int = 32, projection_dim: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
        hidden_size=hidden, intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
        num_hidden_layers=2, vocab_size=vocab_size, projection_dim=projection_dim, hidden_act="gelu",
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, sample_size=64,
    )


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  timestep_spacing="leading", steps_offset=1)


def build_tiny_sdxl(out_dir: str | Path | None = None, seed: int = 0):
    """A StableDiffusionXLPipeline of a few MB; saved in diffusers layout when ``out_dir`` is given."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tmp = Path(out_dir or ".") / "_tokenizer_src"
    tokenizer = _tokenizer(tmp)
    vocab = len(tokenizer)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=1,
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=_text_encoder(False, vocab), text_encoder_2=_text_encoder(True, vocab),
        tokenizer=tokenizer, tokenizer_2=_tokenizer(tmp), unet=unet, scheduler=_scheduler(),
        force_zeros_for_empty_prompt=True,
    )
    return _save(pipe, out_dir, tmp)


def build_tiny_sd(out_dir: str | Path | None = None, seed: int = 0):
    """A StableDiffusionPipeline (SD 1.x layout) of a few MB."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tmp = Path(out_dir or ".") / "_tokenizer_src"
    tokenizer = _tokenizer(tmp)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=32,
    )
    pipe = StableDiffusionPipeline(
        vae=_vae(), text_encoder=_text_encoder(False, len(tokenizer)), tokenizer=tokenizer, unet=unet,
        scheduler=_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    return _save(pipe, out_dir, tmp)


def _save(pipe, out_dir, tmp: Path):
    import shutil

    if out_dir is not None:
        pipe.save_pretrained(str(out_dir))
    shutil.rmtree(tmp, ignore_errors=True)
    return pipe
