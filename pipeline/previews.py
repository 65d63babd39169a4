"""Small preview images for the UI: thumbnails with a verdict badge."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BADGE_COLOURS = {"accept": (22, 163, 74), "warn": (217, 119, 6), "reject": (220, 38, 38)}
BADGE_TEXT = {"accept": "OK", "warn": "CHECK", "reject": "REJECTED"}


def badge_thumbnail(rgb: np.ndarray | None, verdict: str, out: Path, label: str = "", side: int = 320) -> Path:
    """Save a JPEG thumbnail with a coloured frame and a verdict label; a grey tile if no pixels."""
    img = Image.fromarray(rgb) if rgb is not None else Image.new("RGB", (side, side), (120, 120, 120))
    img.thumbnail((side, side), Image.Resampling.BILINEAR)
    colour = BADGE_COLOURS[verdict]
    border = max(4, side // 60)
    framed = Image.new("RGB", (img.width + 2 * border, img.height + 2 * border), colour)
    framed.paste(img, (border, border))
    draw = ImageDraw.Draw(framed)
    font = ImageFont.load_default(size=max(12, side // 18))
    text = BADGE_TEXT[verdict] + (f" {label}" if label else "")
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    pad = 4
    draw.rectangle((border, border, border + x1 - x0 + 2 * pad, border + y1 - y0 + 2 * pad), fill=colour)
    draw.text((border + pad - x0, border + pad - y0), text, fill=(255, 255, 255), font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    framed.save(out, "JPEG", quality=85)
    return out


def capture_gallery(report, out_dir: Path) -> list[tuple[str, str]]:
    """(thumbnail path, caption) per photo of a CaptureReport, in input order."""
    items = []
    for i, p in enumerate(report.photos):
        label = f"#{p.rank}" if p.selected else ""
        thumb = badge_thumbnail(p.preview, p.verdict, out_dir / f"{i:03d}.jpg", label)
        items.append((str(thumb), caption(p)))
    return items


def caption(p) -> str:
    head = {"accept": "✅ Accepted", "warn": "⚠️ Check", "reject": "❌ Rejected"}[p.verdict]
    if p.selected:
        head += f" · selected #{p.rank}"
    lines = [f"{head} — {p.file}"]
    lines += [f"[{r.code}] {r.message}" for r in p.reasons]
    return "\n".join(lines)


def reasons_rows(report) -> list[list[str]]:
    """Rows for a table: file, verdict, selected rank, pose, reasons with measured values."""
    rows = []
    for p in report.photos:
        reasons = "; ".join(
            f"{r.code} ({r.severity}" + (f", {r.value:.3g} vs {r.threshold:.3g}" if r.value is not None and r.threshold is not None else "") + ")"
            for r in p.reasons
        )
        rows.append([p.file, p.verdict, str(p.rank or ""), p.pose or "", reasons or "—"])
    return rows


def result_caption(result, varied: str | None = None) -> str:
    """Gallery caption for a generated image: what changed (if anything), seed and fields."""
    spec = result.spec
    fields = ", ".join(f"{k}={v}" for k, v in sorted(spec.fields.items()))
    head = f"{varied} · " if varied else ""
    return f"{head}seed {result.seed} · {spec.preset} · {fields}"


def lineage_caption(entry: dict) -> str:
    """What a lineage entry is: seed, fields, and the one change that made it (if any)."""
    fields = ", ".join(f"{k}={v}" for k, v in sorted(entry["spec"]["fields"].items()))
    came_from = f" · made by changing {entry['field']} to {entry['value']}" if entry["field"] else ""
    return f"**Selected:** seed {entry['seed']} · {fields}{came_from}"


def loss_table(lora_dir: Path):
    """Step and loss columns for the training loss plot (empty before a run finishes)."""
    import pandas as pd

    from .train import loss_history

    losses = loss_history(lora_dir)
    return pd.DataFrame({"step": list(range(1, len(losses) + 1)), "loss": losses})


def set_summary(report) -> str:
    """Markdown for the capture set: verdict, counts, reasons, pose coverage and advice."""
    s = report.set
    icon = {"accept": "✅", "warn": "⚠️", "reject": "❌"}[s.verdict]
    lines = [f"### {icon} Capture set: {s.verdict.upper()}",
             f"{s.usable} usable of {s.total} photos · {len(s.selected)} selected for training"]
    lines += [f"- **{r.code}**: {r.message}" for r in s.reasons]
    coverage = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.pose_coverage.items())
    lines.append(f"\n**Poses covered:** {coverage}")
    if s.advice:
        lines.append("\n**What to do next**")
        lines += [f"- {a}" for a in s.advice]
    return "\n".join(lines)


REVIEW_ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌"}


def review_caption(report) -> str:
    """Gallery badge: the overall verdict, each layer's verdict and the identity score."""
    score = report.identity.values.get("centroid_similarity")
    ident = f"identity {score:.2f}" if isinstance(score, (int, float)) else "identity —"
    layers = " ".join(f"{n[0].upper()}{REVIEW_ICONS[getattr(report, n).verdict]}" for n in ("identity", "realism", "context"))
    return f"{REVIEW_ICONS[report.verdict]} {report.verdict} · {ident} · {layers}"


def review_rows(rows) -> list[list[str]]:
    """Table rows (result id, verdict, then each layer's verdict with its reason codes and values)."""
    out = []
    for result_id, _, report in rows:
        cells = [result_id, report.verdict]
        for name in ("identity", "realism", "context"):
            layer = getattr(report, name)
            reasons = "; ".join(
                r["code"] + (f" ({r['value']:.3g} vs {r['threshold']:.3g})"
                             if isinstance(r.get("value"), (int, float)) and isinstance(r.get("threshold"), (int, float)) else "")
                for r in layer.reasons)
            cells.append(f"{layer.verdict}: {reasons or 'ok'}")
        out.append(cells)
    return out
