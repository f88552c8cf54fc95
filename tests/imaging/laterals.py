"""A second generator of lateral chest views, written apart from ``non_radiographs._lateral_chest``.

It shares no code or layout constants with the package's generator, so a scope check that only
learnt that generator's quirks (its centred lung oval, its row of ten vertebrae, its flat sternum
bar) fails here. Differences, each drawn per image: the patient faces left or right; the body sits
anywhere across the frame; the spine is a curved (kyphotic) column of 8-12 vertebrae placed
18-30 % behind the body's centre; the arms are raised over the upper anterior chest or absent; two
diaphragm domes; the film is tilted (+-8 deg), blurred, gamma-shifted, sometimes collimated (bright
borders) and sometimes carries a burned-in side marker.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


def _oval(yy, xx, cy, cx, ry, rx) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


def lateral_view(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One lateral chest view, float32 ``(h, w)`` in [0, 1] (the pixel contract)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= h
    xx /= w
    x = 1 - xx if rng.random() < 0.5 else xx  # x = 0 at the side the patient faces
    img = np.full((h, w), rng.uniform(0.0, 0.15), np.float32)
    cx = rng.uniform(0.4, 0.6)
    body = _oval(yy, x, 0.6, cx, 0.55, rng.uniform(0.3, 0.42))
    img[body] = rng.uniform(0.5, 0.7)
    img[_oval(yy, x, 0.45, cx, 0.3, rng.uniform(0.2, 0.28))] = rng.uniform(0.15, 0.3)  # both lungs, overlapping
    spine = cx + rng.uniform(0.18, 0.3)
    for k in range(int(rng.integers(8, 13))):
        y0 = rng.uniform(0.05, 0.15) + 0.08 + k * 0.07
        sx = spine + 0.04 * np.sin((y0 - 0.1) * np.pi * rng.uniform(0.8, 1.4))
        img[(np.abs(yy - y0) < 0.028) & (np.abs(x - sx) < 0.045)] = rng.uniform(0.8, 1.0)
    heart = _oval(yy, x, 0.62, cx - 0.08, 0.16, 0.15)
    img[heart] = np.maximum(img[heart], rng.uniform(0.5, 0.65))
    domes = yy > 0.7 + 0.06 * np.cos((x - cx) * 5) + 0.03 * (x - cx)
    img[domes & body] = rng.uniform(0.6, 0.75)
    if rng.random() < 0.6:  # arms raised over the upper anterior chest
        arm = np.abs((yy - 0.35) + 0.9 * (x - cx + 0.15)) < rng.uniform(0.04, 0.08)
        img[arm & (yy < 0.5)] += 0.25
    img = ndimage.rotate(img, rng.uniform(-8, 8), reshape=False, order=1, mode="nearest")
    img = ndimage.gaussian_filter(img, rng.uniform(1, 3))
    cells = rng.random((12, 12)).astype(np.float32)
    img = img + 0.06 * np.asarray(Image.fromarray(cells).resize((w, h), Image.BICUBIC))
    if rng.random() < 0.4:  # collimation: bright unexposed borders
        b = int(rng.integers(4, max(5, w // 12)))
        img[:, :b] = img[:, -b:] = 0.95
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.5:  # burned-in side marker
        pil = Image.fromarray((img * 255).astype(np.uint8))
        ImageDraw.Draw(pil).text((int(w * rng.uniform(0.05, 0.8)), int(h * 0.05)), "L" if rng.random() < 0.5 else "R",
                                 fill=255)
        img = np.asarray(pil, dtype=np.float32) / 255
    return np.clip(img, 0, 1).astype(np.float32)


def lateral_views(seed: int, n: int = 20) -> list[tuple[str, np.ndarray]]:
    """``n`` lateral views of random size (384-700 x 320-600 px), ``[(f"lateral-b/{i}", image), ...]``."""
    rng = np.random.default_rng(seed)
    return [(f"lateral-b/{i}", lateral_view(rng, int(rng.integers(384, 700)), int(rng.integers(320, 600))))
            for i in range(n)]
