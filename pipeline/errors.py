"""Plain-words messages for GPU failures: out of memory, and ZeroGPU quota / queue / duration errors.

:func:`explain_gpu_error` is a pure function from an exception to a :class:`UserMessage` (or None
when the exception is not one of these), so the UI handlers, the CLI and the tests share one
mapping. It never imports gradio: ZeroGPU's errors are recognised by their text and title.

Where the errors come from (``spaces`` 0.51):

- ``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError`` is the same class) inside the step,
  or a ``RuntimeError`` whose text says "out of memory" (older torch, other backends);
- on ZeroGPU an exception inside a ``@spaces.GPU`` function comes back to the caller as
  ``gr.Error(<exception class name>, title="ZeroGPU worker error")``, so an OOM arrives as the
  bare text ``"OutOfMemoryError"``;
- scheduling: ``gr.Error`` titled "ZeroGPU quota exceeded" ("You have exceeded your ... quota
  (90s requested vs. 30s left). Try again in 0:12:05.", "... reached its GPU limit",
  "No GPU was available after 60s"), "ZeroGPU pending credits exceeded", and
  "ZeroGPU illegal duration" ("The requested GPU duration (...) is larger than the maximum allowed");
- a worker that died (typically killed at the end of its duration): "GPU task aborted".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["UserMessage", "explain_gpu_error"]

_WAIT = re.compile(r"try again in\s+([0-9:]+(?:\.\d+)?)", re.IGNORECASE)

_DOING = {"generate": "generating", "train": "training", "review": "reviewing"}
_ADVICE = {
    "generate": "Try fewer images at once or a smaller image size, then run it again.",
    "train": "Try a lower training resolution or fewer photos, then press Train again; "
             "training resumes from its last checkpoint.",
}


@dataclass(frozen=True)
class UserMessage:
    kind: str  # "out_of_memory" | "gpu_quota" | "gpu_busy" | "gpu_duration" | "gpu_aborted"
    title: str
    message: str


def _wait_text(text: str) -> str | None:
    """'0:12:05' -> '12 min 5 s' (ZeroGPU prints a timedelta)."""
    match = _WAIT.search(text)
    if not match:
        return None
    parts = [float(p) for p in match.group(1).split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return " ".join(f"{v} {u}" for v, u in ((h, "h"), (m, "min"), (s, "s")) if v) or "a moment"


def _texts(exc: BaseException) -> tuple[str, str]:
    message = getattr(exc, "message", None)
    text = str(message if isinstance(message, str) else exc)
    title = getattr(exc, "title", None)
    return text, title if isinstance(title, str) else ""


def _is_oom(exc: BaseException, text: str) -> bool:
    try:
        import torch

        oom_types: tuple[type[BaseException], ...] = (torch.OutOfMemoryError,)
    except (ImportError, AttributeError):  # pragma: no cover - torch without the class
        oom_types = ()
    if oom_types and isinstance(exc, oom_types):
        return True
    if isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in text.lower():
        return True
    # ZeroGPU re-raises a worker's exception as gr.Error whose text is the class name.
    return text.strip() in ("OutOfMemoryError", "torch.OutOfMemoryError", "MemoryError")


def explain_gpu_error(exc: BaseException, action: str = "generate") -> UserMessage | None:
    """A plain-words message (what happened, what to try) for a GPU failure, else None.

    ``action`` ("generate" or "train") picks the advice. The text never repeats the original
    exception beyond the wait time ZeroGPU reports, so it holds no paths, prompts or tokens.
    """
    text, title = _texts(exc)
    low, low_title = text.lower(), title.lower()
    doing = _DOING.get(action, action)
    advice = _ADVICE.get(action, _ADVICE["generate"])
    if _is_oom(exc, text):
        return UserMessage("out_of_memory", "Out of GPU memory",
                           f"The GPU ran out of memory while {doing}. {advice} "
                           "Nothing was lost; this session still works.")
    if "illegal duration" in low_title or "larger than the maximum allowed" in low:
        return UserMessage("gpu_duration", "Too much work for one GPU call",
                           f"This request needs more GPU time than one call may use. {advice}")
    if "task aborted" in low or ("worker error" in low_title and "abort" in low):
        return UserMessage("gpu_aborted", "GPU task stopped",
                           f"The GPU task was stopped before it finished (it probably ran past its time "
                           f"limit). {advice}")
    if ("quota" in low or "quota" in low_title or "runs limit" in low or "gpu limit" in low
            or "pending credits" in low_title or "credits allocated" in low):
        wait = _wait_text(text)
        when = f"Try again in about {wait}" if wait else "Wait a while and try again"
        return UserMessage("gpu_quota", "GPU quota used up",
                           f"Your free GPU time on this Space is used up for now. {when}, or sign in "
                           "with Hugging Face for more quota. Smaller requests (fewer images, smaller "
                           "size) use less of it.")
    if "no gpu was available" in low or "waiting for a gpu" in low:
        return UserMessage("gpu_busy", "No GPU free",
                           "All GPUs are busy right now. Wait a minute and try again.")
    return None
