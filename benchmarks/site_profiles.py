"""What a site profile does on cross-source checks: BN adaptation and a local threshold, alone and together.

For each "site", the films are split in two halves by patient (seeded). Half A plays the site's
local films: its images (no labels) adapt the batch-norm statistics, and its labels choose the
local threshold (``site.choose_threshold``, target sensitivity 0.95, out-of-scope films left out,
as ``cxr-model site recalibrate`` does). Half B is then scored at that threshold, every film
counted (as the card's figures). Then A and B swap, so every film is measured once by a profile
made without it; the table pools both folds.

    python benchmarks/site_profiles.py --model-dir assets/models/BUNDLE [--child-n 200] [--json OUT]

Sites: the bundle's adult test films (NIH, by patient_id); a seeded stratified subset of the
children's test films under a simulated acquisition shift (shift.py). The 16 official Kermany val
films (8 pneumonia) are too few for a local threshold; they get adaptation only (on themselves).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cxr_model.imaging.adapt import adapt_batchnorm  # noqa: E402
from cxr_model.imaging.bundle import load_cxr_bundle  # noqa: E402
from cxr_model.imaging.data import child_group, kermany_items, load_sources  # noqa: E402
from cxr_model.imaging.ood import load_ood  # noqa: E402
from cxr_model.imaging.predict import predict_with_features  # noqa: E402
from cxr_model.imaging.shift import SHIFTS  # noqa: E402
from cxr_model.imaging.site import choose_threshold  # noqa: E402
from cxr_model.imaging.splits import split_items  # noqa: E402
from cxr_model.imaging.train_mixed import selection_subset  # noqa: E402
from cxr_model.imaging.transforms import EvalTransform  # noqa: E402
from cxr_model.metrics import classification as M  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402

CONDITIONS = ("as bundled", "BN adapted", "local threshold", "BN adapted + local threshold")


def _scores(bundle, ood, src):
    """P(pneumonia) and out-of-scope flags (OOD on the bundled network's features) of uint8 sources."""
    tf = EvalTransform(bundle.img_size)
    ps, flags = [], []
    for i in range(0, len(src), 64):
        p, f = predict_with_features(bundle, tf(src[i:i + 64]))
        ps.append(p)
        flags.append(ood.score(f) > ood.threshold)
    return np.concatenate(ps), np.concatenate(flags)


def _metrics(y, p, thr) -> dict:
    m = M.compute_threshold_metrics(y, p, thr)
    tp, npos = int(((p >= thr) & (y == 1)).sum()), int((y == 1).sum())
    tn, nneg = int(((p < thr) & (y == 0)).sum()), int((y == 0).sum())
    return {"n": int(len(y)), "n_pneumonia": npos, "n_normal": nneg, "auroc": M.compute_auroc(y, p),
            "sensitivity": m["sensitivity"], "sensitivity_ci95": M.wilson_interval(tp, npos),
            "specificity": m["specificity"], "specificity_ci95": M.wilson_interval(tn, nneg), "accuracy": m["accuracy"]}


def halves(groups: list[str], seed: int = 0) -> np.ndarray:
    """0/1 half per film, by group (patient: the NIH file name's prefix, Kermany's child key), seeded."""
    g = sorted(set(groups))
    side = dict(zip(g, np.random.default_rng(seed).permutation(len(g)) % 2))
    return np.array([side[x] for x in groups])


def site_effect(bundle, ood, src, y, groups, target=0.95) -> dict:
    """Every film measured once, by the profile made on the other half (see the module docstring).

    The AUROC pools the two folds' probabilities as they are; sensitivity/specificity/accuracy
    pool each film's call at its own fold's threshold.
    """
    half = halves(groups)
    prob = {c: np.zeros(len(y)) for c in CONDITIONS}
    called = {c: np.zeros(len(y), bool) for c in CONDITIONS}
    thresholds = {c: [] for c in CONDITIONS}
    p0, f0 = _scores(bundle, ood, src)
    for a in (0, 1):
        A, B = half == a, half != a
        pa, fa = _scores(adapt_batchnorm(bundle, src[torch.from_numpy(A)]), ood, src)
        t0 = choose_threshold(y[A & ~f0], p0[A & ~f0], target)["threshold"]
        ta = choose_threshold(y[A & ~fa], pa[A & ~fa], target)["threshold"]
        for c, p, t in zip(CONDITIONS, (p0, pa, p0, pa), (bundle.threshold, bundle.threshold, t0, ta)):
            prob[c][B], called[c][B] = p[B], p[B] >= t
            thresholds[c].append(round(float(t), 4))
    res = {}
    for c in CONDITIONS:
        m = _metrics(y, called[c].astype(float), 0.5)
        res[c] = dict(m, auroc=M.compute_auroc(y, prob[c]), thresholds_by_fold=thresholds[c],
                      out_of_scope=int((f0 if "adapted" not in c else fa).sum()))
    res["halves"] = {"n_a": int((half == 0).sum()), "n_b": int((half == 1).sum()),
                     "pneumonia_a": int(y[half == 0].sum()), "pneumonia_b": int(y[half == 1].sum())}
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--child-n", type=int, default=200)
    ap.add_argument("--shift", default="darker (exposure -30 %)", help="a shift.py name, or 'none'")
    ap.add_argument("--target", type=float, default=0.95, help="target sensitivity of the local threshold")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    s = get_settings()
    bundle = load_cxr_bundle(a.model_dir, device="cpu")
    ood = load_ood(bundle)
    results = {}
    off = kermany_items(s.kermany_dir, "val")
    src, y = load_sources(off)[0], np.array([i.label for i in off])
    p0, _ = _scores(bundle, ood, src)
    pa, _ = _scores(adapt_batchnorm(bundle, src), ood, src)
    results["official Kermany val (16 children, other uploader; adapted on itself)"] = {
        "as bundled": _metrics(y, p0, bundle.threshold), "BN adapted": _metrics(y, pa, bundle.threshold)}
    ad = split_items(bundle, s.kermany_dir, "test", "adult", s.nih_adult_dir)
    results["adult test (NIH), halves by patient"] = site_effect(
        bundle, ood, load_sources(ad)[0], np.array([i.label for i in ad]), [i.path.stem.split("_")[0] for i in ad],
        a.target)
    ch = split_items(bundle, s.kermany_dir, "test", "child")
    yc = np.array([i.label for i in ch])
    idx = selection_subset(yc, a.child_n, 0)
    src = load_sources([ch[i] for i in idx])[0]
    src = src if a.shift == "none" else torch.stack([SHIFTS[a.shift](x) for x in src])
    results[f"child test subset, {a.shift}, halves by child"] = site_effect(
        bundle, ood, src, yc[idx], [child_group(ch[i].path) for i in idx], a.target)
    for site, r in results.items():
        print(f"\n{site}")
        for c in CONDITIONS:
            if c in r:
                m = r[c]
                print(f"  {c:30s} n={m['n']} ({m['n_pneumonia']}/{m['n_normal']}) AUROC {m['auroc']:.3f} "
                      f"sens {m['sensitivity']:.3f} [{m['sensitivity_ci95'][0]:.2f}, {m['sensitivity_ci95'][1]:.2f}] "
                      f"spec {m['specificity']:.3f} [{m['specificity_ci95'][0]:.2f}, {m['specificity_ci95'][1]:.2f}] "
                      f"acc {m['accuracy']:.3f}" + (f" thr {m['thresholds_by_fold']}" if "thresholds_by_fold" in m else ""))
    if a.json:
        Path(a.json).write_text(json.dumps({"model": bundle.model_id, "results": results}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
