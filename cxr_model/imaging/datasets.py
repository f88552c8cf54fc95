"""torch Datasets: in-memory sources for training, labelled files for evaluation."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from cxr_model.imaging.data import Item
from cxr_model.imaging.formats import ImageReadError
from cxr_model.imaging.io import read_image
from cxr_model.imaging.transforms import EvalTransform, source_size, to_source


class SourceDataset(Dataset):
    """In-memory uint8 sources ``(N, 1, 224, 224)`` with labels, transformed on access."""

    def __init__(self, sources: torch.Tensor, labels: torch.Tensor, transform):
        self.sources, self.labels, self.transform = sources, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.sources[i]), self.labels[i]


class FileDataset(Dataset):
    """Labelled files -> ``(tensor, index, error, (height, width))``; unreadable files yield an error.

    Any exception while reading or transforming one file (not only :class:`ImageReadError`)
    becomes that file's error, so one hostile file can never stop a DataLoader worker or the run.
    """

    def __init__(self, items: list[Item], img_size: int):
        self.items, self.tf = items, EvalTransform(img_size)
        self.img_size = img_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        try:
            gray = read_image(it.path)
            x = self.tf(to_source(gray, source_size(self.img_size)))
            if not torch.isfinite(x).all():
                raise ImageReadError(it.path.name, "gives non-finite pixel values (NaN or infinity)")
            return x, i, "", gray.shape
        except ImageReadError as exc:
            msg = str(exc)
        except Exception as exc:  # noqa: BLE001 - a reader bug must cost one file, not the run
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            msg = f"{it.path.name}: could not be read ({detail})"
        return torch.zeros(1, self.img_size, self.img_size), i, msg, (0, 0)


def _collate(batch):
    ok = [b for b in batch if not b[2]]
    x = torch.stack([b[0] for b in ok]) if ok else torch.zeros(0)
    return x, [b[1] for b in ok], [(b[1], b[2]) for b in batch if b[2]], [b[3] for b in ok]
