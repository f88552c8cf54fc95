"""The chest X-ray bundle: CxrBundle and its loader (sha256-checked, weights_only)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cxr_model.imaging.network import build_model, pick_device
from cxr_model.metrics.calibration import apply_platt
from cxr_model.registry import WEIGHTS, BundleError, SharedModel, model_id, read_state
from cxr_model.settings import get_settings


@dataclass
class CxrBundle:
    """A loaded chest X-ray classifier. Shared by callers: never mutate ``model``.

    Attributes:
        model: the network in eval mode on ``device``, wrapped in :class:`SharedModel` so that
            every forward holds the bundle's lock (a bare ``nn.Module`` passed in is wrapped).
        meta: the bundle's metadata (threshold, img_size, calibration, ...).
    """

    model: SharedModel
    meta: dict[str, Any]
    device: torch.device
    path: Path

    def __post_init__(self) -> None:
        if not isinstance(self.model, SharedModel):
            self.model = SharedModel(self.model)

    @property
    def model_id(self) -> str:
        return model_id(self.meta)

    @property
    def img_size(self) -> int:
        return int(self.meta["input"]["img_size"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"]["value"])

    @property
    def arch(self) -> str:
        return self.meta["architecture"]

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated P(pneumonia) from raw logits (Platt scaling fitted on validation)."""
        return apply_platt(logits.float(), self.meta.get("calibration"))


def load_cxr_bundle(bundle_dir: str | Path, device: str | torch.device | None = None) -> CxrBundle:
    """Load the chest X-ray classifier bundle, verified, in eval mode."""

    dev = pick_device(str(device) if device else None)
    state, meta = read_state(bundle_dir, map_location="cpu")
    if meta.get("task") != "cxr-pneumonia":
        raise BundleError(f"{bundle_dir}: not a chest X-ray bundle (task {meta.get('task')!r})")
    model = build_model(meta["architecture"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(f"{Path(bundle_dir) / WEIGHTS}: weights do not fit {meta['architecture']} ({exc})") from None
    model.to(dev).eval()
    # Parameters keep requires_grad: Grad-CAM needs the graph. Predictions run under inference_mode.
    return CxrBundle(model, meta, dev, Path(bundle_dir))


def resolve_bundle(model_dir: str | Path | None) -> CxrBundle:
    return load_cxr_bundle(model_dir or get_settings().cxr_model_dir)
