"""Out-of-distribution check: Mahalanobis distance of the classifier's penultimate features.

Lee et al. (NeurIPS 2018): fit one Gaussian (mean, shrunk covariance) to the pooled features of
the *training* radiographs; the distance of a new image's features from that mean says how unlike
the training images it is to the network. The threshold is a high percentile of the *validation*
radiographs' distances; non-radiographs never fit or choose anything, they only measure the result.
The statistics live beside the weights, in the bundle: ``ood.pt`` (tensors only, loaded with
``weights_only=True``) and ``ood.json`` (the fit, the weights' sha256, the evaluation). Refit after
the weights change: ``cxr-model ood fit``.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging.bundle import CxrBundle, load_cxr_bundle
from cxr_model.imaging.data import load_sources
from cxr_model.imaging.formats import ImageReadError
from cxr_model.imaging.layout import LayoutModel
from cxr_model.imaging.network import penultimate_features
from cxr_model.imaging.non_radiographs import non_radiographs
from cxr_model.imaging import splits as _splits
from cxr_model.imaging.transforms import EvalTransform, load_tensor, source_size, to_source
from cxr_model.registry import BundleError
from cxr_model.settings import get_settings

OOD_WEIGHTS = "ood.pt"
OOD_META = "ood.json"
PERCENTILE = 99.5
#: For a bundle of children and adults: at the 99.5th percentile, generated lateral views (seeds 11
#: and 123) passed as frontal films; the 96th withholds them and flags at most ~4 % of either
#: population's validation films (issue 10 allows 5 %).
PERCENTILE_TWO_POPULATIONS = 96.0
REASON_FEATURES = "unlike the training radiographs (OOD distance above the threshold)"


class OodError(RuntimeError):
    """OOD statistics missing or fitted for other weights; the message says what to run."""


def split_items(bundle, kermany_dir, split: str, population: str | None = "child", adult_dir=None):
    """One part of the bundle's own split, for the fit; a missing ``splits.csv`` is an :class:`OodError`."""
    try:
        return _splits.split_items(bundle, kermany_dir, split, population, adult_dir)
    except FileNotFoundError as exc:
        raise OodError(str(exc)) from None


@dataclass
class OodModel:
    """Gaussian of the training features.

    Attributes:
        mean: ``float32 (D,)``.
        precision: ``float32 (D, D)``, inverse of the Ledoit-Wolf shrunk covariance.
        threshold: distances above it are out of distribution.
    """

    mean: torch.Tensor
    precision: torch.Tensor
    threshold: float
    layout: LayoutModel | None = None

    def score(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Mahalanobis distance, ``(N, D)`` or ``(D,)`` features -> ``(N,)`` float64."""
        f = torch.as_tensor(np.asarray(features, dtype=np.float32)).reshape(-1, self.mean.numel())
        d = f - self.mean
        q = torch.einsum("nd,de,ne->n", d, self.precision, d).clamp_min(0)
        return q.sqrt().double().numpy()

    def outside(self, score: float) -> bool:
        """The feature distance rule: above the threshold is outside what the model was made for."""
        return bool(score > self.threshold)

    def verdicts(self, features, x: torch.Tensor | None = None,
                 declared: list[str | None] | None = None) -> list[tuple[float, bool, str]]:
        """The one scope rule, per film: ``(feature distance, out of scope, reason)``.

        Out of scope, with the first reason that applies: the file declares it (``declared``: e.g. a
        lateral view in the DICOM header, see :mod:`~cxr_model.imaging.dicom_context`); the image
        check (:class:`~cxr_model.imaging.layout.LayoutModel`, on the model inputs ``x (N, 1, S, S)``;
        skipped when ``x`` is ``None`` or the bundle predates it) names one (blank image, not a
        frontal chest view); the feature distance is above the threshold. ``reason`` is ``""`` for a
        film in scope.
        """
        scores = self.score(features)
        image = self.layout.check(x) if self.layout is not None and x is not None else [(0.0, "")] * len(scores)
        declared = list(declared) if declared is not None else [None] * len(scores)
        reasons = [said or why or (REASON_FEATURES if self.outside(s) else "") for s, (_, why), said in zip(scores, image, declared)]
        return [(float(s), bool(r), r) for s, r in zip(scores, reasons)]

    def judge(self, features, x: torch.Tensor | None = None, declared: str | None = None) -> tuple[float, bool, str]:
        """One film's ``(distance, out of scope, reason)`` from its features, model input ``(1, 1, S, S)``
        and the file's own declared reason, if any."""
        return self.verdicts(features, x, [declared])[0]


# ------------------------------------------------------------------------------------ features
@torch.inference_mode()
def batch_features(bundle: CxrBundle, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Penultimate features of model inputs ``(N, 1, S, S)`` -> ``float32 (N, D)``."""
    out = [penultimate_features(bundle.model, bundle.arch, x[i:i + batch_size].to(bundle.device)).float().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def source_features(bundle: CxrBundle, sources: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Features of 224 x 224 uint8 sources ``(N, 1, 224, 224)`` through the eval transform."""
    tf = EvalTransform(bundle.img_size)
    feats = [batch_features(bundle, tf(sources[i:i + batch_size])) for i in range(0, len(sources), batch_size)]
    return np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)


def gray_features(bundle: CxrBundle, images: list[np.ndarray]) -> np.ndarray:
    """Features of contract images through the one preprocessing path (to_source -> EvalTransform)."""
    if not images:
        return np.zeros((0, 0), np.float32)
    return source_features(bundle, torch.stack([to_source(g, source_size(bundle.img_size)) for g in images]))


# ------------------------------------------------------------------------------------- fit/load
def fit_gaussian(features: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mean and Ledoit-Wolf shrunk precision of ``(N, D)`` features; returns the shrinkage too."""
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(features.astype(np.float64))
    return (torch.tensor(lw.location_, dtype=torch.float32), torch.tensor(lw.precision_, dtype=torch.float32),
            float(lw.shrinkage_))


def fit_ood(bundle: CxrBundle, kermany_dir: str | Path, dicom_dir: str | Path | None = None,
            max_train: int = 1500, seed: int = 0, log=print, adult_dir: str | Path | None = None) -> dict:
    """Fit the OOD statistics for ``bundle`` and write ``ood.pt`` + ``ood.json`` into its folder.

    Args:
        kermany_dir: where the bundle's ``splits.csv`` child paths point.
        dicom_dir: folder with ``manifest.csv`` of real DICOMs to score and report (optional).
        max_train: at most this many training images per population (a seeded random subset).
        adult_dir: the ``nih_adult`` folder, for a bundle whose ``splits.csv`` holds adults too.

    Returns:
        The description written to ``ood.json``.
    """
    t0 = time.time()
    pops = ["child"] + (["adult"] if adult_dir is not None and _has_adults(bundle) else [])
    train, f_val = [], {}
    for pop in pops:
        items = split_items(bundle, kermany_dir, "train", pop, adult_dir)
        if len(items) > max_train:
            idx = np.random.default_rng(seed).choice(len(items), max_train, replace=False)
            items = [items[i] for i in sorted(idx)]
        train += items
        f_val[pop] = source_features(bundle, load_sources(split_items(bundle, kermany_dir, "val", pop, adult_dir), size=source_size(bundle.img_size))[0])
    f_train = source_features(bundle, load_sources(train, size=source_size(bundle.img_size))[0])
    log(f"features: train {f_train.shape}, val " + ", ".join(f"{p} {f.shape}" for p, f in f_val.items()) + f" ({time.time() - t0:.0f} s)")
    return fit_ood_features(bundle, f_train, f_val, dicom_dir, seed, t0,
                            train_data="the bundle's splits.csv 'train' part" + (f" (at most {max_train} per population, seeded)"))


def _has_adults(bundle: CxrBundle) -> bool:
    return "adult" in bundle.meta.get("populations", [])


def fit_ood_features(bundle: CxrBundle, f_train: np.ndarray, f_val: dict, dicom_dir=None, seed: int = 0,
                     t0: float | None = None, train_data: str = "") -> dict:
    """Fit and write the OOD statistics from features already computed.

    ``f_val`` maps population -> validation features. The threshold is the largest of the
    populations' :data:`PERCENTILE` th percentiles (:data:`PERCENTILE_TWO_POPULATIONS` for two), so
    no population has more than about 0.5 % (4 %) of its validation films flagged.
    """
    from sklearn.metrics import roc_auc_score

    t0 = t0 or time.time()
    mean, precision, shrinkage = fit_gaussian(f_train)
    model = OodModel(mean, precision, float("nan"))
    s_by = {p: model.score(f) for p, f in f_val.items()}
    s_val = np.concatenate(list(s_by.values()))
    pct = PERCENTILE_TWO_POPULATIONS if len(s_by) > 1 else PERCENTILE
    model.threshold = float(max(np.percentile(s, pct) for s in s_by.values()))

    others = non_radiographs(seed=seed)
    s_other = model.score(gray_features(bundle, [g for _, g in others]))
    kinds = sorted({n.split("/")[0] for n, _ in others})
    y = np.r_[np.zeros(len(s_val)), np.ones(len(s_other))]
    evaluation = {
        "auroc_val_radiographs_vs_non_radiographs": float(roc_auc_score(y, np.r_[s_val, s_other])),
        "n_val_radiographs": int(len(s_val)),
        "n_non_radiographs": int(len(s_other)),
        "val_flagged_fraction": float(np.mean(s_val > model.threshold)),
        "val_by_population": {p: {"n": int(len(s)), "flagged_fraction": float(np.mean(s > model.threshold))}
                              for p, s in s_by.items()},
        "non_radiographs_flagged_fraction": float(np.mean(s_other > model.threshold)),
        "by_kind": {
            k: {"n": int(sum(n.startswith(k + "/") for n, _ in others)),
                "flagged_fraction": float(np.mean([s > model.threshold for (n, _), s in zip(others, s_other)
                                                   if n.startswith(k + "/")])),
                "min_score": float(min(s for (n, _), s in zip(others, s_other) if n.startswith(k + "/")))}
            for k in kinds
        },
        "not_flagged": [n for (n, _), s in zip(others, s_other) if s <= model.threshold],
        "val_score_quantiles": {q: float(np.percentile(s_val, float(q))) for q in ("50", "90", "99", "99.5")},
    }
    dicoms = score_dicoms(bundle, model, dicom_dir) if dicom_dir else []
    desc = {
        "method": "Mahalanobis distance of penultimate (pooled) features to a Gaussian fitted on training radiographs",
        "reference": "Lee K, Lee K, Lee H, Shin J. A simple unified framework for detecting out-of-distribution "
                     "samples and adversarial attacks. NeurIPS 2018.",
        "covariance": f"Ledoit-Wolf shrinkage (shrinkage {shrinkage:.4f})",
        "features_dim": int(mean.numel()),
        "n_train": int(len(f_train)),
        "train_data": train_data,
        "threshold": model.threshold,
        "threshold_rule": f"largest over populations ({', '.join(f'{p} n={len(s)}' for p, s in s_by.items())}) of the "
                          f"{pct:g}th percentile of the distances of the bundle's validation films; "
                          "lowered from the 99.5th after generated lateral views passed; non-radiographs were not used to fit it",
        "model": bundle.model_id,
        "model_sha256": bundle.meta.get("sha256"),
        "img_size": bundle.img_size,
        "evaluation": evaluation,
        "real_dicoms": dicoms,
        "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - t0, 1),
    }
    old = load_ood_state(bundle.path)  # the image check does not depend on the weights: it is kept
    torch.save({"mean": mean, "precision": precision, "threshold": torch.tensor(model.threshold),
                **{k: v for k, v in old[0].items() if k.startswith("layout_") or k == "structure_min"}},
               bundle.path / OOD_WEIGHTS)
    (bundle.path / OOD_META).write_text(json.dumps({**desc, **{k: old[1][k] for k in ("layout",) if k in old[1]}},
                                                   indent=2) + "\n")
    return desc


def score_dicoms(bundle: CxrBundle, model: OodModel, dicom_dir: str | Path) -> list[dict]:
    """OOD distance of each DICOM listed in ``dicom_dir/manifest.csv``."""
    manifest = Path(dicom_dir) / "manifest.csv"
    if not manifest.exists():
        return []
    rows = []
    with open(manifest, newline="") as fh:
        for r in csv.DictReader(fh):
            try:
                x = load_tensor(Path(dicom_dir) / r["path"], bundle.img_size)
            except ImageReadError as exc:
                rows.append({"file": r["path"], "error": str(exc)})
                continue
            s = float(model.score(batch_features(bundle, x.unsqueeze(0)))[0])
            rows.append({"file": r["path"], "dataset": r.get("dataset", ""), "label": r.get("label", ""),
                         "age": r.get("age", ""), "score": round(s, 3), "flagged": model.outside(s)})
    return rows


def load_ood(bundle: CxrBundle) -> OodModel:
    """The OOD statistics stored with ``bundle``; raises :class:`OodError` if absent or stale."""
    weights, meta_path = bundle.path / OOD_WEIGHTS, bundle.path / OOD_META
    if not weights.exists() or not meta_path.exists():
        raise OodError(f"{bundle.path.name}: no OOD statistics; run `cxr-model ood fit`")
    meta = json.loads(meta_path.read_text())
    if meta.get("model_sha256") != bundle.meta.get("sha256"):
        raise OodError(f"{meta_path}: OOD statistics were fitted for other weights; "
                       "run `cxr-model ood fit`")
    t = torch.load(weights, map_location="cpu", weights_only=True)
    return OodModel(t["mean"].float(), t["precision"].float(), float(t["threshold"]), LayoutModel.from_state(t))


def load_ood_state(folder: Path) -> tuple[dict, dict]:
    """``(ood.pt tensors, ood.json)`` of a bundle folder as stored, empty where absent (for merging on a refit)."""
    w, m = Path(folder) / OOD_WEIGHTS, Path(folder) / OOD_META
    return (torch.load(w, map_location="cpu", weights_only=True) if w.exists() else {},
            json.loads(m.read_text()) if m.exists() else {})


def fit_command(model_dir: str | None = None, max_train: int = 1500) -> int:
    """``cxr-model ood fit [--model-dir DIR] [--max-train N]``: fit, write and summarise; 2 on an error."""
    s = get_settings()
    try:
        bundle = load_cxr_bundle(model_dir or s.cxr_model_dir, device=s.device)
        d = fit_ood(bundle, s.kermany_dir, s.dicom_dir, max_train=max_train, adult_dir=s.data_dir / "cxr" / "nih_adult")
    except (BundleError, OodError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ev = d["evaluation"]
    flagged = sum(bool(r.get("flagged")) for r in d["real_dicoms"])
    print(f"{d['model']}: threshold {d['threshold']:.2f} ({d['threshold_rule']})")
    print(f"AUROC val radiographs (n={ev['n_val_radiographs']}) vs non-radiographs (n={ev['n_non_radiographs']}): "
          f"{ev['auroc_val_radiographs_vs_non_radiographs']:.4f}; flagged: val {ev['val_flagged_fraction']:.3f}, "
          f"non-radiographs {ev['non_radiographs_flagged_fraction']:.3f}")
    print(f"real DICOMs flagged: {flagged}/{len(d['real_dicoms'])}")
    print(f"wrote {bundle.path / OOD_WEIGHTS} and {OOD_META} ({d['seconds']} s)")
    return 0
