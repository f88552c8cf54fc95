"""Does a second vitals target, death within D days of the current hour, pay? (issue 12, optional item)

The bundled risk is P(in-hospital death) at every hour. A target closer to deterioration is death
within ``D`` days of the hour the risk is read at, from the outcomes' ``Survival`` field (whole days
from ICU admission to death, -1 when no death is recorded; deaths after discharge count). This script
measures, for each ``D`` and at hours 24 and 48, how well that short-term death is ranked by:

* trees trained on in-hospital death (the bundled recipe: ``crossval.fit_trees``, the summary features
  at hours 6, 12, 24, 36 and 48) and trees trained on the short-term target itself (the same features,
  rows and settings, each row labelled by death within ``D`` days of its own hour): 5-fold out-of-fold
  over the bundle's train + validation stays (the bundle's folds: stratified by outcome, seed 2012);
* NEWS2 at that hour and the highest so far (missing parameters score nothing), and SAPS-I;
* with ``--test``: the bundled model's hourly risk, NEWS2 and SAPS-I on the held-out test stays
  (scored once; nothing is chosen on them).

AUROC with a seeded bootstrap 95 % CI (1,000 resamples over stays).

    python benchmarks/vitals_short_term.py [--days 3 7] [--test]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cxr_model.metrics.classification import bootstrap_ci, compute_auroc  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402
from cxr_model.vitals.crossval import TREE_HOURS, fit_trees, fold_indices, tree_logits  # noqa: E402
from cxr_model.vitals.evaluate import score_grids  # noqa: E402
from cxr_model.vitals.bundle import load_vitals_bundle  # noqa: E402
from cxr_model.vitals.grid import to_grid  # noqa: E402
from cxr_model.vitals.news2 import news2_grid  # noqa: E402
from cxr_model.vitals.reader import load_outcomes, read_dir  # noqa: E402
from cxr_model.vitals.splits import read_split  # noqa: E402
from cxr_model.vitals.train_ensemble import dev_stays  # noqa: E402

HOURS = (24, 48)


def died_within(survival_days: np.ndarray, days: int, hour: int) -> np.ndarray:
    """1 where death came within ``days`` days of ``hour`` (hours since ICU admission); unknown -> 0."""
    s = np.nan_to_num(np.asarray(survival_days, float), nan=-1.0)
    return ((s >= 0) & (s * 24 - hour <= days * 24)).astype(int)


def row_labels(survival_days: np.ndarray, days: int) -> np.ndarray:
    """``[N, len(TREE_HOURS)]``: each tree row labelled by death within ``days`` days of its own hour."""
    return np.stack([died_within(survival_days, days, h) for h in TREE_HOURS], axis=1)


def auroc_ci(y: np.ndarray, s: np.ndarray) -> str:
    lo, hi = bootstrap_ci(compute_auroc, y, s, n_resamples=1000, seed=2012)
    return f"{compute_auroc(y, s):.3f} [{lo:.3f}, {hi:.3f}]"


def table(title: str, columns: list[str], survival_days: np.ndarray, days: list[int], scores) -> None:
    """A markdown table: per D and hour, n (deaths within D days) and the AUROC [CI] of each score of
    ``scores(d, hour)``."""
    print(f"\n{title}\n| D | hour | n (deaths in D days) | {' | '.join(columns)} |\n|{' --- |' * (len(columns) + 3)}")
    for d in days:
        for h in HOURS:
            t = died_within(survival_days, d, h)
            cells = " | ".join(auroc_ci(t, v) for v in scores(d, h))
            print(f"| {d} | {h} | {len(t)} ({int(t.sum())}) | {cells} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, nargs="+", default=[3, 7])
    ap.add_argument("--model", default=None, help="vitals bundle (default: the bundled one)")
    ap.add_argument("--test", action="store_true", help="also score the held-out test stays with the bundled model")
    args = ap.parse_args(argv)
    s = get_settings()
    data = s.data_dir / "vitals" / "physionet2012"
    model_dir = Path(args.model) if args.model else s.vitals_model_dir
    outcomes = load_outcomes(data / "Outcomes-a.txt")
    t0 = time.time()
    grids, y, x = dev_stays(data / "set-a", outcomes, model_dir / "splits.csv")
    surv = np.array([outcomes[g.record_id]["Survival"] for g in grids], float)
    saps = np.array([outcomes[g.record_id].get("SAPS-I", -1) for g in grids], float)
    news = np.array([news2_grid(g).total for g in grids])
    print(f"{len(grids)} train + validation stays ({int(y.sum())} in-hospital deaths); "
          f"features {x.shape[2]} ({time.time() - t0:.0f} s)", flush=True)
    oof_ihd = np.zeros((len(y), 48))
    oof_d = {d: np.zeros((len(y), 48)) for d in args.days}
    for k, (fit, held) in enumerate(fold_indices(y, 5, 2012)):
        oof_ihd[held] = tree_logits(fit_trees(x[fit], y[fit], 2012 + k), x[held])
        for d in args.days:
            oof_d[d][held] = tree_logits(fit_trees(x[fit], row_labels(surv[fit], d), 2012 + k), x[held])
        print(f"fold {k + 1}/5 ({time.time() - t0:.0f} s)", flush=True)
    saps = np.nan_to_num(saps, nan=-1)
    table("out of fold, train + validation: AUROC [95 % CI] for death within D days of the hour",
          ["trees, in-hospital death", "trees, this target", "NEWS2 now", "NEWS2 highest so far", "SAPS-I"], surv, args.days,
          lambda d, h: [oof_ihd[:, h - 1], oof_d[d][:, h - 1], news[:, h - 1], news[:, :h].max(1), saps])
    if args.test:
        bundle = load_vitals_bundle(model_dir)
        recs, _ = read_dir(data / "set-a", read_split(model_dir / "splits.csv", "test"))
        sc = score_grids(bundle, [to_grid(r) for r in recs], outcomes)
        test_saps = np.nan_to_num(sc.saps1, nan=-1)
        table(f"held-out test stays, the bundled {model_dir.name} risk (scored once)",
              ["bundled risk", "NEWS2 now", "NEWS2 highest so far", "SAPS-I"], sc.survival_days, args.days,
              lambda d, h: [sc.risk[:, h - 1], sc.news2_hourly[:, h - 1], sc.news2_hourly[:, :h].max(1), test_saps])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
