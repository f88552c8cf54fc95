"""Does reading the adults' films at a higher resolution pay? Measured with the bundle's backbone frozen.

The bundled network reads every film squashed to 224 px; the NIH adult copies are 512 px. This
script reads each adult film through the one preprocessing path (``transforms.model_input``) at
224 px and at a larger size, takes the penultimate features, and compares, on the adults only:

* the bundled head at 224 px (as the product scores adults today);
* a linear head (L2 logistic regression, class-balanced) on the features at each size,
  its penalty C reported per value;
* that head averaged with the bundled logit (z-scored), a cheap ensemble.

Heads are compared by patient-grouped 5-fold cross-validation over the bundle's adult *train and
validation* films (3 seeded repeats, out-of-fold AUROC); the *test* patients are scored once, by
a head fitted on all train + validation films. Note: the backbone was fine-tuned on the train
films, so their features are not unseen; validation and test films are.

    python benchmarks/adult_resolution.py [--model DIR] [--size 448] [--c 0.01 0.03 0.1]
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cxr_model.imaging.bundle import load_cxr_bundle  # noqa: E402
from cxr_model.imaging.io import read_image  # noqa: E402
from cxr_model.imaging.operating import features_and_logits  # noqa: E402
from cxr_model.imaging.splits import split_items  # noqa: E402
from cxr_model.imaging.transforms import model_input  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402


@torch.inference_mode()
def features(bundle, paths: list[Path], size: int, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    feats, logits = [], []
    for i in range(0, len(paths), batch):
        x = torch.stack([model_input(read_image(p), size) for p in paths[i:i + batch]])
        f, lg = features_and_logits(bundle.model, bundle.arch, x)
        feats.append(f.numpy())
        logits.append(lg.numpy())
    return np.concatenate(feats), np.concatenate(logits)


def head(f_tr, y_tr, f_te, c: float) -> np.ndarray:
    sc = StandardScaler().fit(f_tr)
    lr = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(sc.transform(f_tr), y_tr)
    return lr.decision_function(sc.transform(f_te))


def oof(f, y, groups, c: float, repeats: int = 3) -> np.ndarray:
    out = np.zeros(len(y))
    for rep in range(repeats):
        order = {g: i for i, g in enumerate(np.random.default_rng(rep).permutation(np.unique(groups)))}
        for tr, te in GroupKFold(5).split(f, y, [order[g] for g in groups]):
            out[te] += head(f[tr], y[tr], f[te], c) / repeats
    return out


def z(s: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``s`` standardised by the mean and spread of ``ref`` (train + validation scores: no test statistics)."""
    return (s - ref.mean()) / ref.std()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--c", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    args = ap.parse_args(argv)
    s = get_settings()
    bundle = load_cxr_bundle(args.model or s.cxr_model_dir, device="cpu")
    nih = s.data_dir / "cxr" / "nih_adult"
    parts = {k: split_items(bundle, s.kermany_dir, k, "adult", nih) for k in ("train", "val", "test")}
    items = [it for k in parts for it in parts[k]]
    is_test = np.array([k == "test" for k in parts for _ in parts[k]])
    y = np.array([it.label for it in items])
    with open(nih / "manifest.csv", newline="") as fh:
        patient = {r["path"]: r["patient_id"] for r in csv.DictReader(fh)}
    groups = np.array([patient[str(it.path.relative_to(nih))] for it in items])
    t0 = time.time()
    f224, base = features(bundle, [it.path for it in items], bundle.img_size)
    fbig, _ = features(bundle, [it.path for it in items], args.size)
    print(f"{bundle.model_id}: {len(items)} adult films ({(~is_test).sum()} train+val, {is_test.sum()} test); "
          f"features at {bundle.img_size} and {args.size} px in {time.time() - t0:.0f} s")
    d, t = ~is_test, is_test
    print(f"bundled head at {bundle.img_size} px: train+val AUROC {roc_auc_score(y[d], base[d]):.3f} "
          f"(train films seen in fine-tuning), test {roc_auc_score(y[t], base[t]):.3f} (n={t.sum()})")
    print(f"{'features':>12} {'C':>6} {'CV AUROC':>9} {'CV +bundled':>11} {'test':>6} {'test +bundled':>13}")
    for name, f in ((f"{bundle.img_size} px", f224), (f"{args.size} px", fbig)):
        for c in args.c:
            o = oof(f[d], y[d], groups[d], c)
            te = head(f[d], y[d], f[t], c)
            both_d, both_t = z(o, o) + z(base[d], base[d]), z(te, o) + z(base[t], base[d])
            print(f"{name:>12} {c:>6} {roc_auc_score(y[d], o):>9.3f} {roc_auc_score(y[d], both_d):>11.3f} "
                  f"{roc_auc_score(y[t], te):>6.3f} {roc_auc_score(y[t], both_t):>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
