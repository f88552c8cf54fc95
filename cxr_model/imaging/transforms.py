"""From the pixel contract to the model's input tensor: the one preprocessing path.

Every caller (training, ``predict``, ``evaluate``, the UI) goes through :func:`to_source` and
:class:`EvalTransform` (or :func:`load_tensor`, which chains them with the reader), so the model
sees the same numbers whatever door a radiograph came in by.

Steps, with the reason for each:

1. :func:`to_source` brings any radiograph to **224 x 224, 8-bit** (or the model's input size where
   that is larger, see :func:`source_size`), *without* keeping the aspect ratio, with an
   antialiased (Lanczos) resize. That is exactly how the uploaders of the Kermany
   copies we train on produced them (see ``../shared/data/cxr/README.md``): a full-size
   radiograph then looks to the model like its training images did.
2. A resize to the model's ``img_size`` (antialiased bilinear).
3. **Histogram equalisation** per image. Acquisition shifts (exposure, contrast, gamma, window)
   are mostly monotone intensity maps, which equalisation undoes; this is the main defence
   against the shift between the Kermany train and test splits.
4. Scaling to ``(x - 0.5) / 0.29``: an equalised image is roughly uniform on [0, 1].

Training adds random geometry (crop, rotation, shift) and photometric noise *before* step 3, so
that the model learns from the same kind of equalised image it is shown at test time.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from cxr_model.imaging.formats import Source
from cxr_model.imaging.io import read_image

SOURCE_SIZE = 224
NORM_MEAN = 0.5
NORM_STD = 0.29


def source_size(img_size: int) -> int:
    """Side of the 8-bit source for a model of input ``img_size``: 224, or ``img_size`` if larger.

    A model that reads more than 224 pixels (e.g. 448 for the adults' 512 px films) gets its
    source resized once from the original, never upsampled from a 224 copy.
    """
    return max(SOURCE_SIZE, int(img_size))


def to_source(gray: np.ndarray, size: int = SOURCE_SIZE) -> torch.Tensor:
    """Bring a contract image (float ``(H, W)`` in [0, 1]) to the training images' form.

    Returns:
        ``uint8`` tensor ``(1, size, size)`` (224 unless a caller passes :func:`source_size`).
    """
    img8 = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
    if img8.shape != (size, size):
        pil = Image.fromarray(img8, mode="L").resize((size, size), Image.LANCZOS)
        img8 = np.array(pil)
    return torch.from_numpy(np.ascontiguousarray(img8)).unsqueeze(0)


def _finish(x: torch.Tensor) -> torch.Tensor:
    """Equalise a uint8 ``(..., 1, S, S)`` tensor and scale it to the model's float input."""
    x = F.equalize(x)
    return (x.float() / 255.0 - NORM_MEAN) / NORM_STD


class EvalTransform:
    """Deterministic transform: uint8 ``(1, 224, 224)`` source -> float32 ``(1, S, S)`` input.

    Also accepts a batch ``(N, 1, 224, 224)``.
    """

    def __init__(self, img_size: int):
        self.img_size = int(img_size)

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        x = src
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            x = F.resize(x, [self.img_size, self.img_size], antialias=True)
        return _finish(x)


class TrainTransform:
    """Random augmentation for training: uint8 ``(1, 224, 224)`` -> float32 ``(1, S, S)``.

    Geometry: random resized crop (50-100 % of the area), rotation +-10 degrees, shift +-6 %,
    mimicking the cropping and positioning differences between acquisition sites. Photometry:
    gamma, contrast and brightness jitter, blur and Gaussian noise; after equalisation only their
    non-monotone parts (noise, blur, clipping) remain, which is what we want the model to ignore.
    No horizontal flip: the heart's side is real anatomy.
    """

    def __init__(self, img_size: int, site_augment: bool = False):
        self.img_size = int(img_size)
        # Opt-in (model 2): JPEG re-compression and burned-in markers/text, before the geometry
        # so they are cropped and rotated like the film. Off by default: 1.1.0 trained without.
        self.site = SiteArtifacts() if site_augment else None
        self.geometry = v2.Compose(
            [
                v2.RandomResizedCrop(self.img_size, scale=(0.5, 1.0), ratio=(0.8, 1.25), antialias=True),
                v2.RandomAffine(degrees=10, translate=(0.06, 0.06)),
            ]
        )
        self.photometric = v2.RandomApply([v2.ColorJitter(brightness=0.3, contrast=0.3)], p=0.8)
        self.blur = v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.3)

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        x = self.site(src) if self.site is not None else src
        x = self.geometry(x)
        x = self.photometric(x)
        if torch.rand(()) < 0.5:
            gamma = float(torch.empty(()).uniform_(0.6, 1.6))
            x = F.adjust_gamma(x, gamma)
        x = self.blur(x)
        if torch.rand(()) < 0.3:
            noise = torch.randn_like(x, dtype=torch.float32) * float(torch.empty(()).uniform_(2, 10))
            x = (x.float() + noise).clamp(0, 255).to(torch.uint8)
        return _finish(x)


class SiteArtifacts:
    """Acquisition artefacts that differ between sites, on a uint8 ``(1, H, W)`` source.

    JPEG re-compression at quality 30-95 (p = ``p_jpeg``) and a burned-in marker (p = ``p_marker``):
    a bright or dark block with short text (side marker "L"/"R", "AP", "PORTABLE", a date) in a
    random corner, as portable adult films carry and the Kermany copies mostly do not, so the
    marker cannot stand for a population or a class.
    """

    TEXTS = ("L", "R", "AP", "PA", "PORTABLE", "SUPINE", "12/03", "ERECT")

    def __init__(self, p_jpeg: float = 0.5, p_marker: float = 0.4):
        self.p_jpeg, self.p_marker = p_jpeg, p_marker

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        import io

        from PIL import ImageDraw

        do_jpeg, do_marker = torch.rand(()) < self.p_jpeg, torch.rand(()) < self.p_marker
        if not (do_jpeg or do_marker):
            return src
        pil = Image.fromarray(src[0].numpy(), mode="L")
        if do_marker:
            h, w = src.shape[-2:]
            r = torch.rand(4).tolist()
            text = self.TEXTS[int(r[0] * len(self.TEXTS))]
            x0 = int((0.02 + 0.06 * r[1]) * w) if r[2] < 0.5 else int((0.75 + 0.1 * r[1]) * w)
            y0 = int((0.02 + 0.06 * r[3]) * h) if r[2] < 0.25 or r[2] >= 0.75 else int((0.85 + 0.05 * r[3]) * h)
            fg = 255 if r[3] < 0.8 else 0
            draw = ImageDraw.Draw(pil)
            if r[1] < 0.4:  # a lead-marker block behind the text
                draw.rectangle([x0 - 2, y0 - 2, x0 + 6 * len(text) + 3, y0 + 12], fill=255 - fg)
            draw.text((x0, y0), text, fill=fg)
        if do_jpeg:
            buf = io.BytesIO()
            pil.save(buf, format="JPEG", quality=int(30 + 65 * float(torch.rand(()))))
            buf.seek(0)
            pil = Image.open(buf).convert("L")
        return torch.from_numpy(np.array(pil)).unsqueeze(0)


def load_tensor(source: Source, img_size: int, name: str | None = None) -> torch.Tensor:
    """File (path, bytes or file object) -> the model's float32 input ``(1, img_size, img_size)``.

    The single path from a file to a tensor; raises :class:`~cxr_model.imaging.io.ImageReadError`.
    """
    return model_input(read_image(source, name), img_size)


def model_input(gray: np.ndarray, img_size: int) -> torch.Tensor:
    """Contract image -> the model's float32 input ``(1, img_size, img_size)`` (source, then eval transform)."""
    return EvalTransform(img_size)(to_source(gray, source_size(img_size)))
