"""Render ``assets/backgrounds/office_blur.jpg``: a defocused open-plan office backdrop.

Drawn, not photographed, so it carries no licence or privacy questions: window bays, ceiling
lights, desks, a plant and a colleague-shaped blur, then a strong lens-like Gaussian blur.
Run ``python assets/make_backgrounds.py`` to regenerate it (the output is committed).
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent / "backgrounds" / "office_blur.jpg"


def render(w: int = 1600, h: int = 2000, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None, None]
    base = (np.array([214, 210, 202]) * (1 - y) + np.array([150, 142, 132]) * y) * np.ones((h, w, 1))
    im = Image.fromarray(base.astype(np.uint8))
    d = ImageDraw.Draw(im)
    for x in range(-100, w, 420):  # window bays with daylight
        d.rectangle([x + 40, int(h * 0.08), x + 340, int(h * 0.55)], fill=(236, 240, 244))
        d.rectangle([x + 180, int(h * 0.08), x + 196, int(h * 0.55)], fill=(120, 118, 112))
    for x in range(60, w, 300):  # ceiling lights
        d.ellipse([x, 10, x + 160, 60], fill=(252, 250, 240))
    d.rectangle([0, int(h * 0.62), w, int(h * 0.68)], fill=(112, 90, 70))  # desks
    d.rectangle([0, int(h * 0.68), w, h], fill=(96, 98, 104))
    d.ellipse([int(w * 0.78), int(h * 0.40), int(w * 0.98), int(h * 0.66)], fill=(70, 112, 66))  # plant
    d.ellipse([int(w * 0.12), int(h * 0.36), int(w * 0.22), int(h * 0.48)], fill=(160, 120, 100))  # a colleague
    d.rectangle([int(w * 0.09), int(h * 0.47), int(w * 0.25), int(h * 0.66)], fill=(40, 52, 80))
    noise = rng.normal(0, 3, (h, w, 3))
    arr = np.clip(np.asarray(im, np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.GaussianBlur(28))


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    render().save(OUT, "JPEG", quality=85)
