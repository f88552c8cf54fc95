"""Train the vitals LSTM on set A: stratified split, early stopping, calibration, threshold, bundle.

Split ``strat-622-seed2012``: records stratified by outcome into 60 % train, 20 % validation,
20 % test with seed 2012 (:func:`stratified_split`). The normaliser is fitted on train; early
stopping, Platt calibration and every threshold use validation only; test is never read here
except to be listed in ``splits.csv``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cxr_model.metrics.calibration import fit_platt
from cxr_model.metrics.classification import compute_auroc, event1_threshold
from cxr_model.registry import save_bundle
from cxr_model.vitals.bundle import NORMALISER_FILE, TASK, VitalsBundle, render_card
from cxr_model.vitals.evaluate import Scored, metrics_for, score_grids
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.lstm import VitalsEnsemble, VitalsLSTM, features
from cxr_model.vitals.normaliser import STATIC_FEATURES, Normaliser
from cxr_model.vitals.reader import N_HOURS, channel_names, load_outcomes, read_dir
from cxr_model.vitals.splits import SPLIT_NAME, stratified_split

log = logging.getLogger(__name__)


@dataclass
class VitalsTrainConfig:
    records: str
    outcomes: str
    out: str
    hidden: int = 64
    layers: int = 1
    dropout: float = 0.5
    epochs: int = 60
    patience: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    members: int = 5
    seed: int = 2012
    split_seed: int = 2012
    max_records: int | None = None
    name: str = "vitals-lstm"
    version: str = "1.0.0"


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE at every hour plus extra weight on the last hour (the 48 h prediction)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    target = y[:, None].expand_as(logits)
    return bce(logits, target) + bce(logits[:, -1], y)


def _logits(model, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy().astype(np.float64)


def _fit_member(model: VitalsLSTM, cfg: VitalsTrainConfig, x_tr, y_tr, x_va, y_va) -> tuple[int, list[dict]]:
    """Train one LSTM with early stopping on validation AUROC at 48 h; loads its best state."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best_auc, best_state, best_epoch, stale = -1.0, None, 0, 0
    history = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(x_tr))
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            b = perm[i:i + cfg.batch_size]
            opt.zero_grad()
            loss = _loss(model(x_tr[b]), y_tr[b])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(b)
        auc = compute_auroc(y_va, _logits(model, x_va)[:, -1]) if len(x_va) else float("nan")
        history.append({"epoch": epoch, "train_loss": total / max(len(x_tr), 1), "val_auroc_48h": auc})
        log.info("epoch %d loss %.4f val AUROC@48h %.4f", epoch, total / max(len(x_tr), 1), auc)
        score = auc if np.isfinite(auc) else -total
        if score > best_auc + 1e-4 or best_state is None:
            best_auc, best_epoch, stale = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return best_epoch, history


def train(cfg: VitalsTrainConfig) -> dict:
    """Train, calibrate and bundle the model; returns the metadata written."""
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    outcomes = load_outcomes(cfg.outcomes)
    ids_with_outcome = None
    if cfg.max_records:  # a random subset of the stays, drawn before reading (smoke runs)
        present = sorted(int(p.stem) for p in Path(cfg.records).glob("*.txt") if p.stem.isdigit() and int(p.stem) in outcomes)
        rng = np.random.default_rng(cfg.seed)
        ids_with_outcome = [present[i] for i in sorted(rng.choice(len(present), min(cfg.max_records, len(present)), replace=False))]
    records, errors = read_dir(cfg.records, ids_with_outcome)
    for e in errors:
        log.warning("skipped %s", e)
    records = [r for r in records if r.record_id in outcomes]
    if len(records) < 10:
        raise FileNotFoundError(f"{cfg.records}: {len(records)} readable records with an outcome in "
                                f"{Path(cfg.outcomes).name}; training needs at least 10")
    grids = {r.record_id: to_grid(r) for r in records}
    ids = sorted(grids)
    labels = [int(outcomes[i]["In-hospital_death"]) for i in ids]
    split = stratified_split(ids, labels, seed=cfg.split_seed)
    tr = [grids[i] for i in split["train"]]
    va = [grids[i] for i in split["val"]]
    log.info("read %d stays (%d errors) in %.1fs; train %d, val %d, test %d", len(ids), len(errors),
             time.time() - t0, len(tr), len(va), len(split["test"]))

    norm = Normaliser.fit(tr)
    x_tr = features(norm, tr)
    y_tr = torch.tensor([outcomes[g.record_id]["In-hospital_death"] for g in tr], dtype=torch.float32)
    x_va = features(norm, va)
    y_va = np.array([int(outcomes[g.record_id]["In-hospital_death"]) for g in va])

    model = VitalsEnsemble(norm.n_features, cfg.hidden, cfg.layers, cfg.dropout, cfg.members)
    history, best_epochs = [], []
    for k, member in enumerate(model.members):
        torch.manual_seed(cfg.seed + k)
        best_epoch, hist = _fit_member(member, cfg, x_tr, y_tr, x_va, y_va)
        best_epochs.append(best_epoch)
        history += [dict(h, member=k) for h in hist]
    model.eval()

    # Platt scaling per hour on validation logits: early hours carry little information, and one
    # pooled fit left the first hours far above the base rate (mean 0.31 at hour 1 vs 0.14).
    logits_va = _logits(model, x_va)
    cal = {"a": [1.0] * N_HOURS, "b": [0.0] * N_HOURS, "method": "identity (validation has one class)"}
    if len(set(y_va.tolist())) == 2:
        try:
            fits = [fit_platt(y_va, logits_va[:, t]) for t in range(N_HOURS)]
            cal = {"a": [f["a"] for f in fits], "b": [f["b"] for f in fits],
                   "method": "Platt scaling per hour on validation logits"}
        except ValueError:  # complete separation at some hour: no finite fit, keep the identity
            pass

    hp = {"n_features": norm.n_features, "hidden": cfg.hidden, "layers": cfg.layers, "dropout": cfg.dropout,
          "lr": cfg.lr, "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size, "epochs_max": cfg.epochs,
          "patience": cfg.patience, "members": cfg.members, "best_epochs": best_epochs, "seed": cfg.seed}
    meta = {"task": TASK, "name": cfg.name, "version": cfg.version, "architecture": "VitalsEnsemble",
            "hyperparameters": hp, "channels": channel_names(), "n_hours": N_HOURS,
            "input": {"features": "GRU-D style: standardised values [C], masks [C], log1p(hours since last obs)/log1p(48) [C], static [11]",
                      "static": STATIC_FEATURES},
            "normaliser": NORMALISER_FILE, "calibration": cal,
            "output": "calibrated P(in-hospital death) at each hour from data up to that hour"}
    bundle = VitalsBundle(model, norm, dict(meta, threshold={"value": 0.5}), Path(cfg.out))
    va_scored: Scored = score_grids(bundle, va, outcomes)
    y48 = va_scored.labels
    thr_rule = "maximise event-1 = min(sensitivity, PPV) of the 48 h risk on the validation split"
    try:
        thr = event1_threshold(y48, va_scored.risk[:, -1])
        comparators = {
            "news2_24h_threshold": event1_threshold(y48, va_scored.news2_max[24]),
            "news2_48h_threshold": event1_threshold(y48, va_scored.news2_max[48]),
            "rule": "each comparator's threshold maximises its event-1 on the validation split",
        }
        ok = ~np.isnan(va_scored.saps1)
        if ok.any() and len(set(y48[ok].tolist())) == 2:
            comparators["saps1_threshold"] = event1_threshold(y48[ok], va_scored.saps1[ok])
    except ValueError:
        thr, comparators = 0.5, {"rule": "validation has one class: fixed 0.5"}
        thr_rule = "validation split has one class; fixed 0.5"
    meta["threshold"] = {"value": thr, "rule": thr_rule, "split": "val"}
    meta["comparators"] = comparators
    meta["split"] = {"name": SPLIT_NAME, "fractions": [0.6, 0.2, 0.2], "seed": cfg.split_seed, "stratified_by": "In-hospital_death",
                     "file": "splits.csv"}
    meta["training_data"] = {
        "source": "PhysioNet/CinC Challenge 2012 set A (Silva et al. 2012), ODC-BY 1.0",
        "n_records_read": len(ids), "n_errors": len(errors),
        **{f"n_{k}": len(v) for k, v in split.items()},
        **{f"n_{k}_positive": int(sum(outcomes[i]["In-hospital_death"] for i in v)) for k, v in split.items()},
    }
    val = metrics_for(va_scored, meta, n_boot=200)
    meta["validation"] = {k: {kk: vv for kk, vv in v.items() if not kk.endswith("_ci95")} for k, v in val.items()}
    meta["history"] = history
    meta["train_seconds"] = round(time.time() - t0, 1)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    norm.to_json(out / NORMALISER_FILE)
    rows = ["record_id,split"] + [f"{i},{k}" for k, v in split.items() for i in v]
    (out / "splits.csv").write_text("\n".join(rows) + "\n")
    save_bundle(out, model.state_dict(), meta, card=render_card)
    return meta


