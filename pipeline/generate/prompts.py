"""Prompt encoding: split prompts into 75-token chunks and concatenate their embeddings."""
from __future__ import annotations

import torch

from .spec import GenerationSpec, PromptTooLong


def _tokenizers(pipe) -> list:
    return [t for t in (getattr(pipe, "tokenizer", None), getattr(pipe, "tokenizer_2", None)) if t is not None]


def _chunk_limit(pipe) -> int:
    return min(t.model_max_length for t in _tokenizers(pipe)) - 2


def _n_tokens(pipe, text: str) -> int:
    return max(len(t(text, add_special_tokens=False, truncation=False, verbose=False).input_ids)
               for t in _tokenizers(pipe))


def split_prompt(pipe, text: str) -> list[str]:
    """``text`` as chunks of at most 75 tokens, split at commas, then at spaces."""
    limit = _chunk_limit(pipe)
    if _n_tokens(pipe, text) <= limit:
        return [text]
    pieces: list[str] = []
    for phrase in (p.strip() for p in text.split(",")):
        if not phrase:
            continue
        if _n_tokens(pipe, phrase + ",") <= limit:
            pieces.append(phrase + ",")
        else:
            pieces += phrase.split()
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if _n_tokens(pipe, piece) > limit:
            raise PromptTooLong(f"a single word of {_n_tokens(pipe, piece)} tokens exceeds the "
                                f"{limit}-token chunk limit")
        candidate = f"{current} {piece}".strip()
        if current and _n_tokens(pipe, candidate) > limit:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def _is_sdxl(pipe) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None


def encode_prompts(pipe, spec: GenerationSpec) -> dict[str, torch.Tensor]:
    """Prompt embeddings for ``pipe(**kwargs)``; long prompts are encoded per 75-token chunk and
    concatenated along the token axis (the pooled SDXL embedding comes from the first chunk)."""
    limit = _chunk_limit(pipe)
    if spec.prompt_chunks:
        chunks = list(spec.prompt_chunks)
        for c in chunks:
            if _n_tokens(pipe, c) > limit:
                raise PromptTooLong(f"a prompt chunk has {_n_tokens(pipe, c)} tokens; the limit is {limit}")
    else:
        chunks = split_prompt(pipe, spec.prompt)
    neg_chunks = split_prompt(pipe, spec.negative_prompt) if spec.negative_prompt else []
    count = max(len(chunks), len(neg_chunks), 1)
    cfg = spec.guidance_scale > 1.0
    device = pipe._execution_device
    pos, neg, pooled, neg_pooled = [], [], None, None
    for i in range(count):
        p = chunks[i] if i < len(chunks) else ""
        n = neg_chunks[i] if i < len(neg_chunks) else None
        if _is_sdxl(pipe):
            pe, ne, pp, npool = pipe.encode_prompt(p, device=device, num_images_per_prompt=1,
                                                   do_classifier_free_guidance=cfg, negative_prompt=n)
            if i == 0:
                pooled, neg_pooled = pp, npool
        else:
            pe, ne = pipe.encode_prompt(p, device, 1, cfg, negative_prompt=n if n is not None else "")
        pos.append(pe)
        neg.append(ne)
    kwargs: dict[str, torch.Tensor] = {"prompt_embeds": torch.cat(pos, dim=1)}
    if cfg:
        kwargs["negative_prompt_embeds"] = torch.cat(neg, dim=1)
    if _is_sdxl(pipe):
        kwargs["pooled_prompt_embeds"] = pooled
        if cfg:
            kwargs["negative_pooled_prompt_embeds"] = neg_pooled
    return kwargs
