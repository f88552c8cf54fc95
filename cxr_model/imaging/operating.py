"""Population-aware operating point: which population a film shows, its calibration, one threshold.

Children (Kermany) and adults (NIH) want different thresholds on one shared calibration (model
2.0.0: children's validation Youden point 0.20, adults' 0.54), so one number cannot serve both.
Here each population gets its own Platt map, *centred* on that population's operating point:

    P = sigmoid(a_pop * (logit - l_pop))

``a_pop`` is the slope of a class-balanced Platt fit on the population's validation films (an
equal prior, so neither population's prevalence moves its threshold), ``l_pop`` the logit of
the population's Youden point on its validation films pooled with simulated acquisition shifts.
Every population then meets the one bundled threshold, 0.5, at its own operating point, so
``predict``, ``evaluate`` and the review page keep one threshold. ``P`` reads as the probability
of pneumonia at a 50 % prior in the film's population; the card gives its calibration.

The population comes, in order, from the caller (e.g. DICOM PatientAge, :func:`population_from_age`),
else from the image: a logistic regression on the network's penultimate features fitted on the
training films of both populations. When that estimate is uncertain (P(adult) inside
:data:`UNCERTAIN`), the pooled map (both populations, equally weighted) is used.
"""
from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from cxr_model.imaging.network import classifier_head
from cxr_model.metrics import classification as M
from cxr_model.metrics.calibration import fit_platt

POPULATIONS = ("child", "adult")
ADULT_AGE_YEARS = 18
UNCERTAIN = (0.1, 0.9)
THRESHOLD = 0.5


def population_from_age(age) -> str | None:
    """``"child"`` / ``"adult"`` from an age: years as a number, or DICOM AS (``"045Y"``, ``"006M"``).

    ``None`` when the age is missing or unreadable (the image then decides).
    """
    if age is None:
        return None
    if isinstance(age, (int, float)):
        years = float(age)
    else:
        m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", str(age).upper())
        if not m:
            return None
        years = float(m.group(1)) / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0, "": 1.0}[m.group(2)]
    if not np.isfinite(years) or years < 0 or years > 130:
        return None
    return "adult" if years >= ADULT_AGE_YEARS else "child"


@dataclass
class PopulationModel:
    """Logistic regression P(adult | standardised penultimate features)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def p_adult(self, features) -> np.ndarray:
        """``(N, D)`` features -> ``(N,)`` float64 P(adult)."""
        f = np.asarray(features, dtype=np.float64).reshape(-1, self.mean.size)
        return 1.0 / (1.0 + np.exp(-(((f - self.mean) / self.scale) @ self.coef + self.intercept)))

    def to_meta(self) -> dict:
        r = lambda v: [round(float(x), 6) for x in v]  # noqa: E731
        return {"mean": r(self.mean), "scale": r(self.scale), "coef": r(self.coef), "intercept": float(self.intercept)}

    @classmethod
    def from_meta(cls, d: dict) -> "PopulationModel":
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef")), float(d["intercept"]))


def fit_population_model(features: np.ndarray, is_adult: np.ndarray, c: float = 0.05) -> PopulationModel:
    """L2-penalised logistic regression on standardised features (scikit-learn, lbfgs)."""
    from sklearn.linear_model import LogisticRegression

    f = np.asarray(features, dtype=np.float64)
    mean, scale = f.mean(0), f.std(0) + 1e-6
    lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit((f - mean) / scale, np.asarray(is_adult, int))
    return PopulationModel(mean, scale, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))


def choose_population_model(f_train, adult_train, f_val, adult_val, cs=(0.01, 0.1, 1.0, 10.0)) -> tuple[PopulationModel, dict]:
    """The penalty chosen on validation: least (wrong + uncertain) share, populations weighted equally."""
    scores = {}
    for c in cs:
        m = fit_population_model(f_train, adult_train, c)
        pops = np.array(assign(m.p_adult(f_val)), dtype=object)
        truth = np.where(np.asarray(adult_val, bool), "adult", "child")
        scores[c] = float(np.mean([np.mean(pops[truth == t] != t) for t in POPULATIONS]))
    best = min(cs, key=lambda c: (scores[c], c))
    return fit_population_model(f_train, adult_train, best), {"C": best, "val_error_or_uncertain_by_C": scores}


def assign(p_adult: np.ndarray, declared=None) -> list[str | None]:
    """Population per film: the declared one where given, else the image's; ``None`` = uncertain."""
    out = []
    for i, p in enumerate(np.asarray(p_adult, dtype=np.float64).ravel()):
        d = declared[i] if declared is not None else None
        out.append(d if d in POPULATIONS else "adult" if p >= UNCERTAIN[1] else "child" if p <= UNCERTAIN[0] else None)
    return out


def balanced_weights(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Weights giving every (group, class) cell the same total."""
    w = np.zeros(len(y))
    for g in np.unique(groups):
        for c in (0, 1):
            m = (groups == g) & (y == c)
            w[m] = 1.0 / max(1, m.sum())
    return w


def centred_map(y: np.ndarray, logits: np.ndarray, groups: np.ndarray, pooled_y: np.ndarray,
                pooled_logits: np.ndarray, pooled_groups: np.ndarray) -> dict:
    """Centred Platt map for one population (one group) or the pooled fallback (several).

    Slope: class-balanced (and group-balanced) Platt on the clean validation films. Centre: the
    Youden point of those films pooled with their shifted copies, every group of ``pooled_groups``
    (condition, and population for the pooled map) weighing the same (mean of the groups' J).
    """
    w = balanced_weights(y, groups)
    try:
        cal = fit_platt(y, logits, w)
    except ValueError:  # complete separation (tiny sets): a lightly penalised fit instead
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1.0).fit(np.asarray(logits, float).reshape(-1, 1), y, sample_weight=w / w.mean())
        cal = {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    s = cal["a"] * pooled_logits + cal["b"]  # monotone in the logit, so Youden on it = on the logit
    t = M.balanced_youden(pooled_y, s, pooled_groups)
    centre = (t - cal["b"]) / cal["a"]
    return {"a": float(cal["a"]), "b": float(-cal["a"] * centre), "centre_logit": float(centre)}


def choose_operating_point(val: dict, shifted: dict, shifted_clean: dict | None = None) -> dict:
    """The operating point block of a bundle's metadata.

    Args:
        val: ``{population: (labels (N,), logits (N,))}`` on clean validation films.
        shifted: ``{population: {shift name: logits (M,)}}``, the same films under each shift, or
            a subset of them given clean in ``shifted_clean`` (``{population: (labels (M,), logits (M,))}``).

    Returns:
        ``{"threshold", "per_population": {pop: map}, "pooled": map, "movement": {...}}``;
        ``movement[pop][condition]`` is the Youden point of that condition alone, on the
        population's centred scale (0.5 = the chosen point).
    """
    pops = [p for p in POPULATIONS if p in val]
    sc = shifted_clean or val
    per, movement = {}, {}
    for pop in pops:
        y, lg = val[pop]
        ys = sc[pop][0]
        sh = list(shifted[pop].values())
        py = np.concatenate([y, *[ys] * len(sh)])
        pl = np.concatenate([lg, *sh])
        # Each condition (clean, every shift) weighs the same in the Youden point, whatever its n.
        cond = np.concatenate([np.zeros(len(y)), *[np.full(len(ys), i + 1) for i in range(len(sh))]])
        per[pop] = centred_map(y, lg, np.zeros(len(y)), py, pl, cond)
        a, b = per[pop]["a"], per[pop]["b"]
        sig = lambda z: float(1 / (1 + np.exp(-(a * z + b))))  # noqa: E731
        movement[pop] = {"clean": sig((M.youden_threshold(y, lg))),
                         **{name: sig(M.youden_threshold(ys, v)) for name, v in shifted[pop].items()}}
    ys = np.concatenate([val[p][0] for p in pops])
    ls = np.concatenate([val[p][1] for p in pops])
    gs = np.concatenate([np.full(len(val[p][0]), i) for i, p in enumerate(pops)])
    k = {p: len(shifted[p]) for p in pops}
    pooled_y = [np.concatenate([val[p][0], *[sc[p][0]] * k[p]]) for p in pops]
    # groups: (population, condition) pairs, all weighed the same
    pooled_g = [np.concatenate([np.zeros(len(val[p][0])), *[np.full(len(sc[p][0]), c + 1) for c in range(k[p])]]) + 100 * i
                for i, p in enumerate(pops)]
    pooled = centred_map(ys, ls, gs, np.concatenate(pooled_y),
                         np.concatenate([np.concatenate([val[p][1], *shifted[p].values()]) for p in pops]),
                         np.concatenate(pooled_g))
    return {"threshold": THRESHOLD, "per_population": per, "pooled": pooled, "movement": movement,
            "uncertain_band": list(UNCERTAIN), "adult_age_years": ADULT_AGE_YEARS}


def calibrate(op: dict, logits, populations: list[str | None]):
    """Per-film centred map: numpy ``(N,)`` logits -> float64, or a torch tensor (graph kept)."""
    maps = [op["per_population"].get(p, op["pooled"]) if p else op["pooled"] for p in populations]
    a = [m["a"] for m in maps]
    b = [m["b"] for m in maps]
    if hasattr(logits, "sigmoid"):
        flat = logits.reshape(-1)
        return (flat.new_tensor(a) * flat + flat.new_tensor(b)).sigmoid().reshape(logits.shape)
    z = np.asarray(logits, dtype=np.float64).ravel()
    return 1.0 / (1.0 + np.exp(-(np.asarray(a) * z + np.asarray(b))))


def features_and_logits(model, arch: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward: pooled penultimate features ``(N, D)`` and logits ``(N,)`` (bundle lock held)."""
    hold = getattr(model, "hold", None)
    with (hold() if hold is not None else nullcontext(model)) as raw:
        feats: list[torch.Tensor] = []
        handle = classifier_head(raw, arch).register_forward_hook(lambda m, inp, out: feats.append(inp[0].detach()))
        try:
            logits = raw(x)
        finally:
            handle.remove()
    return feats[0], logits.reshape(-1)
