"""Which vitals models to bundle: refitted on all stays, or the cross-validation's fold models averaged?

``cxr-model vitals train-ensemble`` makes every choice (LSTM epochs, calibration, weight, alert threshold)
on out-of-fold (OOF) predictions, then bundles either models refitted on all train + validation stays
(``--deploy refit``, 2.1.0) or the fold models that made those OOF predictions, averaged (``--deploy
folds``). Whether the OOF calibration and threshold hold for the bundled models can only be seen on
stays neither saw, so this is a nested check over the bundle's train + validation stays (the test stays
are not read):

* outer: 5 stratified folds (seed 99); each outer fold in turn is the new stays;
* inner: on the other four outer folds, the recipe as ``train-ensemble`` runs it (5 folds, seed 2012,
  up to ``--max-epochs`` epochs, ``--lstm-members`` LSTMs, one normaliser fitted on those stays), then
  both deployments (:func:`train_ensemble.deployed_models`) with the same calibration and threshold;
* on the new stays, per deployment and hour: AUROC, the calls at the OOF threshold (sensitivity, PPV,
  event-1), mean risk against the death rate, and the calibration slope.

    python benchmarks/vitals_deploy.py [--outer 0 1 2 3 4] [--max-epochs 16] [--lstm-members 4]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cxr_model.metrics.calibration import apply_platt, fit_platt  # noqa: E402
from cxr_model.metrics.classification import compute_auroc, event1_count_threshold  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402
from cxr_model.vitals.crossval import choose_epochs, crossval_logits, fold_indices, out_of_fold  # noqa: E402
from cxr_model.vitals.ensemble import combine, logit  # noqa: E402
from cxr_model.vitals.normaliser import Normaliser  # noqa: E402
from cxr_model.vitals.reader import load_outcomes  # noqa: E402
from cxr_model.vitals.train_ensemble import calibrate_oof, deployed_models, dev_stays  # noqa: E402

HOURS = (24, 48)


def calls(y: np.ndarray, risk: np.ndarray, threshold: float) -> dict:
    called = risk >= threshold
    tp = int((called & (y == 1)).sum())
    cal = fit_platt(y, logit(risk))
    return {"auroc": compute_auroc(y, risk), "tp": tp, "called": int(called.sum()), "deaths": int(y.sum()),
            "mean_risk": float(risk.mean()), "slope": cal["a"]}


def main(argv=None) -> int:
    s = get_settings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default=str(s.physionet_dir / "set-a"))
    ap.add_argument("--outcomes", default=str(s.physionet_dir / "Outcomes-a.txt"))
    ap.add_argument("--lstm", default=str(s.models_dir / "vitals-lstm"), help="its splits.csv and hyper-parameters")
    ap.add_argument("--outer", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--max-epochs", type=int, default=16)
    ap.add_argument("--lstm-members", type=int, default=4)
    ap.add_argument("--json", help="also write the per-fold rows here")
    args = ap.parse_args(argv)
    t0 = time.time()
    hp = json.loads((Path(args.lstm) / "metadata.json").read_text())["hyperparameters"]
    outcomes = load_outcomes(args.outcomes)
    grids, y, x_sum = dev_stays(args.records, outcomes, Path(args.lstm) / "splits.csv")
    rows = []
    for o in args.outer:
        inner, new = fold_indices(y, 5, 99)[o]
        g_in, y_in, g_new = [grids[i] for i in inner], y[inner], [grids[i] for i in new]
        norm, kept = Normaliser.fit(g_in), []
        oof_by_epoch, oof_gbt = out_of_fold(g_in, x_sum[inner], y_in, fold_indices(y_in, 5, 2012), hp, args.max_epochs,
                                            args.lstm_members, 2012, normaliser=norm, keep=kept)
        epochs, _ = choose_epochs(y_in, oof_by_epoch)
        lstm_cal, comp, oof_risk = calibrate_oof(y_in, oof_by_epoch[epochs - 1], oof_gbt, 5)
        threshold = event1_count_threshold(y_in, oof_risk["ensemble"][:, -1])
        for deploy in ("refit", "folds"):
            trees, model = deployed_models(deploy, kept, norm, g_in, x_sum[inner], y_in, hp, epochs, args.lstm_members, 2012)
            z_lstm, z_gbt = crossval_logits(model, norm, g_new, trees, x_sum[new])
            risk = combine(apply_platt(z_lstm, lstm_cal), z_gbt, comp)["ensemble"]
            for h in HOURS:
                rows.append({"outer": o, "deploy": deploy, "hour": h, "epochs": epochs, **calls(y[new], risk[:, h - 1], threshold)})
                r = rows[-1]
                print(f"outer {o} {deploy:5s} {h} h: AUROC {r['auroc']:.3f}, called {r['called']} for {r['deaths']} deaths, "
                      f"TP {r['tp']}, mean risk {r['mean_risk']:.3f} (death rate {r['deaths'] / len(new):.3f}), "
                      f"slope {r['slope']:.2f} ({time.time() - t0:.0f} s)", flush=True)
    print(f"\n{len(args.outer)} outer folds pooled ({len(y)} stays when all five):")
    for deploy in ("refit", "folds"):
        for h in HOURS:
            rs = [r for r in rows if r["deploy"] == deploy and r["hour"] == h]
            tp, called, deaths = (sum(r[k] for r in rs) for k in ("tp", "called", "deaths"))
            wins = sum(r["auroc"] > q["auroc"] for r in rs for q in rows if q["deploy"] != deploy and q["hour"] == h
                       and q["outer"] == r["outer"])
            print(f"  {deploy:5s} {h} h: mean AUROC {np.mean([r['auroc'] for r in rs]):.4f} (higher in {wins} of {len(rs)} "
                  f"folds), sensitivity {tp / deaths:.3f}, PPV {tp / called:.3f}, event-1 {min(tp / deaths, tp / called):.3f}, "
                  f"called {called} for {deaths} deaths, mean risk {np.mean([r['mean_risk'] for r in rs]):.3f}, "
                  f"slope {np.mean([r['slope'] for r in rs]):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
