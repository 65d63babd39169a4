"""Contact sheet: the team at a glance, one thumbnail per member with a name and a verdict mark."""
from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFont

from .names import display_name
from .report import FAIL, OK, WARN, PortraitResult

THUMB_WIDTH = 200
MAX_SHEET_PIXELS = 40_000_000  # thumbnails shrink for very large teams: the sheet stays a bounded image
_MARK = {OK: ((46, 160, 67), "OK"), WARN: ((222, 150, 20), "!"), FAIL: ((200, 40, 40), "X")}


def thumbnail_bytes(img: Image.Image, size: tuple[int, int]) -> bytes:
    """A small JPEG of a portrait, kept in memory instead of the portrait itself (a few KB)."""
    buf = io.BytesIO()
    img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def thumb_size(size: tuple[int, int], width: int = THUMB_WIDTH) -> tuple[int, int]:
    return width, max(1, round(width * size[1] / size[0]))


def contact_sheet(photos: list[PortraitResult], size: tuple[int, int], title: str = "") -> Image.Image:
    n = max(1, len(photos))
    cols = min(n, max(1, math.ceil(math.sqrt(n * 1.6))))
    rows = math.ceil(n / cols)
    tw, th = thumb_size(size)
    label, pad, head = 34, 12, 30 if title else 0
    scale = min(1.0, math.sqrt(MAX_SHEET_PIXELS / max(1, cols * (tw + pad) * rows * (th + label + pad))))
    tw, th = max(24, int(tw * scale)), max(30, int(th * scale))
    sheet = Image.new("RGB", (pad + cols * (tw + pad), head + pad + rows * (th + label + pad)), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((pad, 10), title, fill=(30, 30, 30), font=font)
    for i, p in enumerate(photos):
        x = pad + (i % cols) * (tw + pad)
        y = head + pad + (i // cols) * (th + label + pad)
        if p.thumbnail:
            with Image.open(io.BytesIO(p.thumbnail)) as im:
                sheet.paste(im.convert("RGB").resize((tw, th), Image.Resampling.LANCZOS), (x, y))
        else:
            draw.rectangle((x, y, x + tw - 1, y + th - 1), fill=(225, 225, 225))
            code = next((r.code for r in p.reasons), "failed")
            draw.text((x + 8, y + th // 2), code, fill=(120, 30, 30), font=font)
        colour, mark = _MARK[p.verdict]
        r = max(8, tw // 14)
        draw.ellipse((x + tw - 2 * r - 4, y + 4, x + tw - 4, y + 4 + 2 * r), fill=colour)
        draw.text((x + tw - r - 4 - 3 * len(mark), y + 4 + r - 5), mark, fill=(255, 255, 255), font=font)
        draw.text((x, y + th + 4), display_name(p.person)[:32], fill=(20, 20, 20), font=font)
        note = ", ".join(dict.fromkeys(r.code for r in p.reasons))[:36]
        if note:
            draw.text((x, y + th + 18), note, fill=(150, 60, 20) if p.verdict != FAIL else (180, 30, 30), font=font)
    return sheet
