"""The vitals bundle: VitalsBundle, its loader and its model card."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxr_model.metrics.calibration import apply_platt
from cxr_model.metrics.format import fmt_metric as _fmt
from cxr_model.registry import BundleError, model_id, read_state, sha256_file
from cxr_model.vitals.ensemble import combine, gbt_logits
from cxr_model.vitals.grid import Grid
from cxr_model.vitals.lstm import VitalsEnsemble, features
from cxr_model.vitals.normaliser import Normaliser
from cxr_model.vitals.summary import base_feature_count, summary_feature_names
from cxr_model.vitals.trees import Trees


TASK = "vitals-mortality"
NORMALISER_FILE = "normaliser.json"


@dataclass
class VitalsBundle:
    """A loaded vitals model. Shared by callers (e.g. a Streamlit resource): never mutate it.

    Attributes:
        model: the network in eval mode on CPU.
        normaliser: the training-set normaliser.
        meta: the bundle's metadata (threshold, calibration, metrics, ...).
        trees: the gradient-boosted trees of an LSTM + GBT ensemble bundle (``None`` for the LSTM alone).
    """

    model: VitalsEnsemble
    normaliser: Normaliser
    meta: dict[str, Any]
    path: Path
    trees: Trees | None = None

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"]["value"])

    @property
    def model_id(self) -> str:
        return model_id(self.meta)

    def features(self, grids: list[Grid]) -> torch.Tensor:
        """Grids -> ``[N, 48, F]`` float32 tensor (the one preprocessing path)."""
        return features(self.normaliser, grids)

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, T]`` -> risk: Platt scaling per hour (``a[t]``, ``b[t]``) or one pair for all."""
        return apply_platt(logits, self.meta.get("calibration"))

    def risk_from_features(self, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Features ``[N, 48, F]`` -> calibrated risk ``[N, 48]`` float64 in [0, 1]."""
        outs = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                outs.append(self.calibrate(self.model(x[i:i + batch_size])))
        if not outs:
            return np.zeros((0, x.shape[1] if x.ndim > 1 else 0))
        return torch.cat(outs).double().numpy()

    def risk(self, grids: list[Grid]) -> np.ndarray:
        """Calibrated risk of in-hospital death at every hour: ``[N, 48]`` (the ensemble's when there are trees)."""
        return self.components(grids)["ensemble" if self.trees is not None else "lstm"]

    def components(self, grids: list[Grid]) -> dict[str, np.ndarray]:
        """``{"lstm": [N, 48]}``, plus ``"gbt"`` and ``"ensemble"`` for an ensemble bundle."""
        if not grids:
            return {k: np.zeros((0, 48)) for k in ("lstm", "gbt", "ensemble")}
        lstm = self.risk_from_features(self.features(grids))
        if self.trees is None:
            return {"lstm": lstm}
        return combine(lstm, gbt_logits(self.trees, grids), self.meta["components"])


def build_model(meta: dict[str, Any]) -> VitalsEnsemble:
    hp = meta["hyperparameters"]
    return VitalsEnsemble(int(hp["n_features"]), int(hp["hidden"]), int(hp.get("layers", 1)),
                          float(hp.get("dropout", 0.0)), int(hp.get("members", 1)))


def load_vitals_bundle(bundle_dir: str | Path) -> VitalsBundle:
    """Load the vitals bundle through the registry (sha256 checked, ``weights_only=True``)."""
    bundle_dir = Path(bundle_dir)
    state, meta = read_state(bundle_dir, map_location="cpu")
    if meta.get("task") != TASK:
        raise BundleError(f"{bundle_dir}: not a vitals bundle (task {meta.get('task')!r})")
    norm_path = bundle_dir / meta.get("normaliser", NORMALISER_FILE)
    if not norm_path.exists():
        raise BundleError(f"{norm_path}: normaliser not found")
    normaliser = Normaliser.from_json(norm_path)
    model = build_model(meta)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(f"{bundle_dir / 'model.pt'}: weights do not fit VitalsEnsemble ({exc})") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return VitalsBundle(model, normaliser, meta, bundle_dir, _load_trees(bundle_dir, meta))


def _load_trees(bundle_dir: Path, meta: dict) -> Trees | None:
    comp = meta.get("components")
    if not comp:
        return None
    path = bundle_dir / comp.get("trees", "trees.npz")
    if not path.exists():
        raise BundleError(f"{path}: trees of the ensemble not found")
    if sha256_file(path) != comp.get("trees_sha256"):
        raise BundleError(f"{path}: sha256 does not match metadata")
    try:
        trees = Trees.load(path)
    except ValueError as exc:
        raise BundleError(f"{path}: {exc}") from None
    names = comp.get("features")
    if names is not None and (len(names) != trees.n_features or names != summary_feature_names()[:len(names)]):
        raise BundleError(f"{path}: the trees' {len(names)} features are not this version's summary features "
                          f"({base_feature_count()} or {len(summary_feature_names())} columns)")
    return trees


def render_card(meta: dict) -> str:
    """``MODEL_CARD.md`` of a vitals bundle from its metadata (passed to ``save_bundle(card=...)``)."""
    td, val = meta["training_data"], meta["validation"]
    rows = "\n".join(
        f"| {k} | {v['n']} ({v['n_positive']} deaths) | {_fmt(v['auroc'])} | {_fmt(v['auprc'])} | {_fmt(v.get('event1'))} |"
        for k, v in val.items() if "auroc" in v)
    return f"""# {meta['name']} {meta['version']}: in-hospital mortality early warning from ICU vitals

**Decision support, not a diagnosis.** The risk is a statistical estimate for ward prioritisation; it
does not replace clinical assessment, NEWS2 escalation policy or a clinician's judgement.

## Intended use
Hourly risk of in-hospital death for adult ICU stays, from the vital signs, laboratory values and
descriptors recorded so far in the first 48 hours. An alert is raised when the risk reaches
{meta['threshold']['value']:.3f} ({meta['threshold']['rule']}).

## Model
{meta['architecture']}: mean logit of {meta['hyperparameters']['members']} LSTMs (one layer, hidden {meta['hyperparameters']['hidden']}) over GRU-D-style
inputs ({len(meta['channels'])} channels: values, masks, time since last observation; 11 static
descriptor features) trained from different seeds on the same split, a logit at every hour, Platt-scaled on validation ({meta['calibration']['method']}).

## Data
{td['source']}. Split `{meta['split']['name']}` (stratified by outcome, seed {meta['split']['seed']}):
train {td['n_train']} ({td['n_train_positive']} deaths), validation {td['n_val']} ({td['n_val_positive']}),
held-out test {td['n_test']} ({td['n_test_positive']}); record ids in `splits.csv`. Outcomes are labels only,
never features. Cleaning rules and normal values: `cxr_model/vitals/channels.json` and `reader.py`.

## Validation metrics (validation split, used for early stopping and thresholds: optimistic)
| group | n | AUROC | AUPRC | event-1 |
|---|---|---|---|---|
{rows}

Held-out test metrics: run `cxr-model vitals evaluate --split test` (see the project report).

## Limits
- One hospital system (MIMIC-II, Boston, 2001-2008); not validated on other populations or ward (non-ICU) patients.
- Trained on set A only; set B of the challenge is held back for an independent test.
- Missing measurements are carried forward from documented normal values; a stay with few observations looks normal.
- Calibrated per hour on the validation stays (Platt scaling); calibration has not been checked on other sites.
- NEWS2 comparisons use stand-ins (SaO2 for SpO2, GCS < 15 for "not alert").
"""
