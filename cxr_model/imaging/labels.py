"""The two classes, their names and how a label is read or called at a threshold."""
from __future__ import annotations


CLASSES = ("NORMAL", "PNEUMONIA")
_LABELS = {"normal": 0, "0": 0, "negative": 0, "no_pneumonia": 0, "pneumonia": 1, "1": 1, "positive": 1}


def parse_label(value: str, where: str) -> int:
    key = str(value).strip().lower()
    if key not in _LABELS:
        raise ValueError(f"{where}: unknown label {value!r} (expected NORMAL/PNEUMONIA or 0/1)")
    return _LABELS[key]


def call(probability: float, threshold: float) -> str:
    """The class name a probability is called at a threshold: at or above it is ``PNEUMONIA``."""
    return CLASSES[int(probability >= threshold)]
