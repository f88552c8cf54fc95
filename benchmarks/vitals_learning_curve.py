"""Would more labelled stays lift the vitals ensemble? A learning curve of the bundled recipe (issue 12).

The recipe of vitals-ensemble 2.2.0 (LSTMs of the vitals-lstm hyper-parameters at 15 epochs, 4 per fold;
trees of ``crossval.GBT_PARAMS``; per-hour Platt scaling and the LSTM weight chosen on the out-of-fold
log-odds) is run 5-fold out of fold over the bundle's train + validation stays (the bundle's folds:
stratified by outcome, seed 2012), with each fold's *fitting* stays cut to a stratified share; the held-out
folds stay whole, so every point is scored on the same 3,200 stays. The test stays are never read.

Per point: AUROC at 24 h and 48 h and 48 h event-1 (min(sensitivity, PPV) at the bundle's count rule, as many
stays called as there are deaths) for the LSTMs, the trees and the ensemble. Then a least-squares line of
each ensemble figure against log2(fitting stays), and where it leads at twice and four times the stays:
an extrapolation, to read as the size of the gain more data could buy, not as a prediction.

    python benchmarks/vitals_learning_curve.py [--fractions 0.25 0.5 0.75 1] [--repeats 2]

About 40 minutes on 2 CPU cores with the defaults.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cxr_model.metrics.classification import compute_auroc, compute_event1, event1_count_threshold  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402
from cxr_model.vitals.crossval import fold_indices, out_of_fold  # noqa: E402
from cxr_model.vitals.reader import load_outcomes  # noqa: E402
from cxr_model.vitals.train_ensemble import calibrate_oof, dev_stays  # noqa: E402

FIGURES = ("auroc_24", "auroc_48", "event1_48")


def cut_folds(folds: list, y: np.ndarray, fraction: float, seed: int) -> list:
    """Each fold's fitting stays cut to a stratified ``fraction`` (all of them at 1); held-out folds kept whole."""
    from sklearn.model_selection import train_test_split

    if fraction >= 1:
        return folds
    return [(np.sort(train_test_split(fit, train_size=fraction, stratify=y[fit], random_state=seed)[0]), held)
            for fit, held in folds]


def figures(y: np.ndarray, risk: np.ndarray) -> dict[str, float]:
    """AUROC at 24 h and 48 h and 48 h event-1 at the count rule, from ``[N, 48]`` risks."""
    last = risk[:, -1]
    return {"auroc_24": compute_auroc(y, risk[:, 23]), "auroc_48": compute_auroc(y, last),
            "event1_48": compute_event1(y, last, event1_count_threshold(y, last))}


def projection(n_fit: list[int], values: list[float], factors=(2, 4)) -> tuple[float, list[float]]:
    """Slope per doubling of a least-squares line in log2(n), and its value at ``factors`` x the largest n."""
    slope, icpt = np.polyfit(np.log2(n_fit), values, 1)
    top = np.log2(max(n_fit))
    return float(slope), [float(icpt + slope * (top + np.log2(f))) for f in factors]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--repeats", type=int, default=2, help="subsamples (and model seeds) per fraction")
    ap.add_argument("--model", default=None, help="LSTM bundle whose hyper-parameters and splits are used "
                                                   "(default: vitals-lstm beside the bundled model)")
    args = ap.parse_args(argv)
    s = get_settings()
    data = s.data_dir / "vitals" / "physionet2012"
    lstm_dir = Path(args.model) if args.model else s.models_dir / "vitals-lstm"
    hp = json.loads((lstm_dir / "metadata.json").read_text())["hyperparameters"]
    t0 = time.time()
    grids, y, x = dev_stays(data / "set-a", load_outcomes(data / "Outcomes-a.txt"), lstm_dir / "splits.csv")
    print(f"{len(y)} train + validation stays ({int(y.sum())} deaths), read in {time.time() - t0:.0f} s", flush=True)
    folds = fold_indices(y, 5, 2012)
    rows = []
    print("| fitting stays per fold | repeat | LSTM 48 h | trees 48 h | ensemble 24 h | ensemble 48 h | "
          "ensemble 48 h event-1 | seconds |\n|---|---|---|---|---|---|---|---|", flush=True)
    for frac in sorted(args.fractions):
        for rep in range(args.repeats):
            t1 = time.time()
            cut = cut_folds(folds, y, frac, 100 + rep)
            oof_lstm, oof_gbt = out_of_fold(grids, x, y, cut, hp, 15, 4, 2012 + 7 * rep)
            _, _, risk = calibrate_oof(y, oof_lstm[-1], oof_gbt, len(folds))
            f = {k: figures(y, r) for k, r in risk.items()}
            rows.append((len(cut[0][0]), f["ensemble"]))
            print(f"| {len(cut[0][0])} | {rep + 1} | {f['lstm']['auroc_48']:.3f} | {f['gbt']['auroc_48']:.3f} | "
                  f"{f['ensemble']['auroc_24']:.3f} | {f['ensemble']['auroc_48']:.3f} | "
                  f"{f['ensemble']['event1_48']:.3f} | {time.time() - t1:.0f} |", flush=True)
    summarise(rows)
    return 0


def summarise(rows: list[tuple[int, dict]]) -> None:
    """Print the lines in log2(fitting stays) through all the points, and through the larger half of the
    sizes only (a curve that flattens is read more soberly from its top)."""
    sizes = sorted({n for n, _ in rows})
    for title, low in (("all sizes", sizes[0]), (f"{sizes[len(sizes) // 2 - 1]} stays and more",
                                                  sizes[len(sizes) // 2 - 1])):
        kept = [(n, r) for n, r in rows if n >= low]
        if len({n for n, _ in kept}) < 2:
            continue
        print(f"\nensemble, least-squares line in log2(fitting stays) over {title}, extrapolated:")
        for k in FIGURES:
            slope, (x2, x4) = projection([n for n, _ in kept], [r[k] for _, r in kept])
            print(f"  {k}: {slope:+.3f} per doubling; at 2x the stays {x2:.3f}, at 4x {x4:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
