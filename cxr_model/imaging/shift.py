"""Deterministic acquisition shifts, to measure how the model holds up off its training site.

Each shift maps a uint8 source ``(1, 224, 224)`` to another. They mimic what differs between
the Kermany train and test films: exposure, contrast, gamma (film/detector response), cropping
and zoom, positioning, sharpness and noise.
"""
from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F


def crop(frac: float):
    """Centre crop to ``frac`` of the side, resized back to the full side (a tighter collimation or a zoom)."""

    def f(x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        c = int(round(size * frac))
        return F.resize(F.center_crop(x, [c, c]), [size, size], antialias=True)

    return f


def _noise(sigma: float):
    def f(x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return (x.float() + torch.randn(x.shape, generator=g) * sigma).clamp(0, 255).to(torch.uint8)

    return f


SHIFTS = {
    "darker (exposure -30 %)": lambda x: F.adjust_brightness(x, 0.7),
    "brighter (exposure +30 %)": lambda x: F.adjust_brightness(x, 1.3),
    "low contrast (x0.6)": lambda x: F.adjust_contrast(x, 0.6),
    "high contrast (x1.5)": lambda x: F.adjust_contrast(x, 1.5),
    "gamma 0.6": lambda x: F.adjust_gamma(x, 0.6),
    "gamma 1.6": lambda x: F.adjust_gamma(x, 1.6),
    "tight crop (80 %)": crop(0.8),
    "shift + rotate 7 deg": lambda x: F.affine(x, angle=7.0, translate=[10, -8], scale=1.0, shear=[0.0, 0.0]),
    "blur (sigma 1.5)": lambda x: F.gaussian_blur(x, [7, 7], [1.5, 1.5]),
    "noise (sigma 8)": _noise(8.0),
}


SELECTION_SHIFTS = ("darker (exposure -30 %)", "low contrast (x0.6)", "gamma 1.6", "tight crop (80 %)")
