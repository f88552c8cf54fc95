"""Second scope check, from the image itself: is this a frontal chest film at all?

The feature OOD check (:mod:`cxr_model.imaging.ood`) asks whether the *network* has seen images
like this one; it let generated lateral views through. This check does not use the network. It
looks at the model input (the histogram-equalised film, the one preprocessing path) in two ways:

* **Structure** (named reason :data:`REASON_BLANK`): the correlation of neighbouring pixels. A film,
  a photo or a CT slice is smooth at the pixel scale (validation films: >= 0.96); a blank frame
  (black, white, flat grey: after equalisation only its sensor noise is left) or pure noise is not
  (about 0.1). Threshold: half the lowest population's 1st percentile on validation films.
* **Layout** (named reason :data:`REASON_LAYOUT`): the film shrunk to a 16 x 16 grid of mean
  intensities (one cell = 14 px of the 224 px input: about a vertebra at that scale), and its
  Mahalanobis distance from the grids of the training films (mean and Ledoit-Wolf covariance).
  A frontal chest film has one layout: shoulders at the top, two dark lung fields either side of a
  bright spine and mediastinum, diaphragm below. A lateral view (one lung field, the spine at one
  side, the heart in front), a CT/MR slice or a photo has another. Threshold: the largest over the
  populations of the 98th percentile (a film's own distance, ``method="higher"``) of the validation
  films' distances, so each population keeps at least 98 % of its validation films in scope. Non-radiographs choose nothing here.

The statistics are stored in the bundle beside the feature OOD's (``ood.pt`` keys ``layout_*``,
``ood.json`` key ``"layout"``), bound to the weights' sha256 with them::

    cxr-model ood fit-layout
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn

GRID = 16
LAYOUT_PERCENTILE = 98.0
REASON_BLANK = "blank image (no structure: a flat frame or noise)"
REASON_LAYOUT = "not a frontal chest view (layout unlike the training films)"


def thumbnails(x: torch.Tensor) -> np.ndarray:
    """Model inputs ``(N, 1, S, S)`` float32 -> their ``GRID x GRID`` mean grids, ``(N, GRID**2)`` float64."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return Fn.adaptive_avg_pool2d(x.reshape(-1, 1, *x.shape[-2:]), GRID).reshape(-1, GRID * GRID).double().numpy()


def structure(x: torch.Tensor) -> np.ndarray:
    """Neighbour correlation of model inputs ``(N, 1, S, S)`` -> ``(N,)`` float64 in [-1, 1].

    The smaller of the horizontal and vertical lag-1 Pearson correlations; a constant image gives 0.
    """
    a = torch.as_tensor(x, dtype=torch.float64).reshape(-1, *x.shape[-2:])

    def corr(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        u = u - u.mean((1, 2), keepdim=True)
        v = v - v.mean((1, 2), keepdim=True)
        return (u * v).sum((1, 2)) / ((u * u).sum((1, 2)) * (v * v).sum((1, 2))).sqrt().clamp_min(1e-12)

    return torch.minimum(corr(a[:, :, 1:], a[:, :, :-1]), corr(a[:, 1:], a[:, :-1])).numpy()


@dataclass
class LayoutModel:
    """Layout Gaussian of the training films' grids and the two thresholds.

    Attributes:
        mean: ``float64 (GRID**2,)``.
        precision: ``float64 (GRID**2, GRID**2)``, inverse of the Ledoit-Wolf covariance.
        threshold: layout distances above it are not a frontal chest view.
        structure_min: neighbour correlations below it are a blank image.
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    structure_min: float

    def distance(self, x: torch.Tensor) -> np.ndarray:
        """Layout distance of model inputs ``(N, 1, S, S)`` -> ``(N,)`` float64."""
        return self.grid_distance(thumbnails(x))

    def grid_distance(self, grids: np.ndarray) -> np.ndarray:
        """Layout distance of grids ``(N, GRID**2)`` (see :func:`thumbnails`) -> ``(N,)`` float64."""
        d = np.asarray(grids, dtype=np.float64).reshape(-1, GRID * GRID) - self.mean
        return np.sqrt(np.clip(np.einsum("nd,de,ne->n", d, self.precision, d), 0, None))

    def check(self, x: torch.Tensor) -> list[tuple[float, str]]:
        """Per input ``(layout distance, reason)``; the reason is ``""`` when the film passes both checks."""
        dist, struct = self.distance(x), structure(x)
        return [(float(d), REASON_BLANK if s < self.structure_min else REASON_LAYOUT if d > self.threshold else "")
                for d, s in zip(dist, struct)]

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors stored in ``ood.pt``."""
        return {"layout_mean": torch.tensor(self.mean), "layout_precision": torch.tensor(self.precision),
                "layout_threshold": torch.tensor(self.threshold), "structure_min": torch.tensor(self.structure_min)}

    @classmethod
    def from_state(cls, t: dict) -> "LayoutModel | None":
        """Back from ``ood.pt``; ``None`` for statistics fitted before this check existed."""
        if "layout_mean" not in t:
            return None
        return cls(t["layout_mean"].double().numpy(), t["layout_precision"].double().numpy(),
                   float(t["layout_threshold"]), float(t["structure_min"]))


def fit_layout(g_train: np.ndarray, g_val: dict[str, np.ndarray], s_val: dict[str, np.ndarray]) -> tuple[LayoutModel, dict]:
    """Fit the layout Gaussian on training films and both thresholds on validation films only.

    Args:
        g_train: :func:`thumbnails` of the training films ``(N, GRID**2)``.
        g_val: population -> :func:`thumbnails` of its validation films.
        s_val: population -> :func:`structure` of its validation films.

    Returns:
        The model and a description for ``ood.json`` (rules, n, flagged share per population).
    """
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(np.asarray(g_train, dtype=np.float64))
    model = LayoutModel(lw.location_, lw.precision_, float("nan"), float("nan"))
    dist = {p: model.grid_distance(g) for p, g in g_val.items()}
    # "higher": the threshold is a validation film's own distance, so at most 2 % of each population lie above it
    model.threshold = float(max(np.percentile(d, LAYOUT_PERCENTILE, method="higher") for d in dist.values()))
    model.structure_min = float(0.5 * min(np.percentile(s, 1) for s in s_val.values()))
    pops = ", ".join(f"{p} n={len(d)}" for p, d in dist.items())
    desc = {
        "method": f"Mahalanobis distance of the {GRID} x {GRID} mean-intensity grid of the equalised model input "
                  "to a Gaussian of the training films' grids (Ledoit-Wolf); plus the neighbour-pixel correlation",
        "grid": GRID,
        "n_train": int(len(g_train)),
        "covariance": f"Ledoit-Wolf shrinkage (shrinkage {lw.shrinkage_:.4f})",
        "threshold": model.threshold,
        "threshold_rule": f"largest over populations ({pops}) of the {LAYOUT_PERCENTILE:g}th percentile of the "
                          "validation films' layout distances; non-radiographs were not used to choose it",
        "structure_min": model.structure_min,
        "structure_rule": f"half the smallest over populations ({pops}) of the 1st percentile of the validation "
                          "films' neighbour correlations",
        "reasons": {"structure": REASON_BLANK, "layout": REASON_LAYOUT},
        "val_by_population": {p: {"n": int(len(dist[p])),
                                  "flagged_fraction": float(np.mean((dist[p] > model.threshold)
                                                                    | (s_val[p] < model.structure_min)))}
                              for p in dist},
    }
    return model, desc
