"""Named site profiles: a site's own batch-norm statistics and/or its own threshold, opt-in.

A profile lives in the site folder (``settings.site_dir``, ``CXR_SITE_DIR``; never inside the
read-only data folder) as ``<name>.json`` (what it holds and for which weights, by sha256) and,
when the site adapted the network, ``<name>.pt`` (the BN buffers, :mod:`~cxr_model.imaging.adapt`).
Two independent parts, each optional:

* **adaptation** (``cxr-model site adapt``): BN statistics re-estimated on unlabelled local films;
* **recalibration** (``cxr-model site recalibrate``): a threshold on the bundle's centred
  probability scale (the bundled threshold is 0.5 for every population, see
  :mod:`~cxr_model.imaging.operating`), chosen on a small labelled local set as the highest one
  that keeps the set's sensitivity at a target, stored with n and the achieved sensitivity and
  specificity and their Wilson 95 % intervals. With an adapted profile the set is scored by the
  adapted network. Refused below :data:`MIN_POSITIVES` pneumonia films.

:func:`apply_site` turns the bundled model into the site's (a copy; the shared bundle is never
changed); without a profile the bundled model is used as is.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cxr_model.imaging.adapt import _NAME, load_site_profile
from cxr_model.imaging.bundle import CxrBundle
from cxr_model.metrics.classification import wilson_interval
from cxr_model.registry import BundleError, metadata_or_none
from cxr_model.settings import get_settings

MIN_POSITIVES = 10
MIN_NEGATIVES = 5
NO_SITE = "Bundled model (no site profile)"
#: What each ``population_source`` means, in words (the page and reports say it).
POPULATION_SOURCES = {"dicom_age": "from the DICOM's PatientAge", "image_estimate": "estimated from the image",
                      "pooled": "population uncertain from the image: pooled operating point"}


def site_folder(folder: str | Path | None = None) -> Path:
    """The site folder (``settings.site_dir`` by default); :class:`ValueError` inside the data folder."""
    s = get_settings()
    path = Path(folder or s.site_dir)
    a, d = os.path.realpath(path), os.path.realpath(s.data_dir)
    if a == d or a.startswith(d + os.sep):
        raise ValueError(f"{path}: site profiles are not written inside the read-only data folder {s.data_dir}; "
                         "set CXR_SITE_DIR to another folder")
    return path


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValueError(f"{name!r}: a site name is letters, digits, '.', '_' or '-' (at most 64)")
    return name


def read_profile(folder: str | Path, name: str) -> dict | None:
    """A profile's description (``<name>.json``), or ``None`` when there is none."""
    js = Path(folder) / f"{check_name(name)}.json"
    return json.loads(js.read_text()) if js.exists() else None


def profile_sha256(folder: str | Path, name: str) -> str | None:
    """SHA-256 of a profile's content (``<name>.json``, then ``<name>.pt`` where there is one), ``None`` without one.

    What a profile *is*: adapting or recalibrating again under the same name changes it, so caches
    key on it and a saved review decision records it beside the name.
    """
    folder, h = Path(folder), hashlib.sha256()
    js = folder / f"{check_name(name)}.json"
    if not js.exists():
        return None
    for path in (js, folder / f"{name}.pt"):
        if path.exists():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def list_profiles(folder: str | Path | None = None, bundle: CxrBundle | None = None) -> list[dict]:
    """Every saved profile's description, sorted by name; with ``bundle``, only those made for its weights."""
    path = Path(folder or get_settings().site_dir)
    out = []
    for js in sorted(path.glob("*.json")) if path.is_dir() else []:
        try:
            info = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if not _NAME.match(js.stem) or (bundle is not None and info.get("model_sha256") != bundle.meta.get("sha256")):
            continue
        out.append(dict(info, name=js.stem, adapted=(path / f"{js.stem}.pt").exists()))
    return out


def profile_names(model_dir: str | Path | None = None, folder: str | Path | None = None) -> list[str]:
    """Names of the saved profiles made for the weights in ``model_dir`` (default: the bundled model)."""
    s = get_settings()
    sha = (metadata_or_none(model_dir or s.cxr_model_dir) or {}).get("sha256")
    return [p["name"] for p in list_profiles(folder or s.site_dir) if sha and p.get("model_sha256") == sha]


def apply_site(bundle: CxrBundle, name: str | None, folder: str | Path | None = None) -> CxrBundle:
    """The bundle with site profile ``name`` applied (a copy), or ``bundle`` itself when ``name`` is empty.

    Raises:
        BundleError: no such profile, or one made for other weights (the message says what to do).
    """
    if not name:
        return bundle
    folder = Path(folder or get_settings().site_dir)
    try:
        info = read_profile(folder, name)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    if info is None:
        raise BundleError(f"{folder / (name + '.json')}: no such site profile (see `cxr-model site list`)")
    if info.get("model_sha256") != bundle.meta.get("sha256"):
        raise BundleError(f"{folder / (name + '.json')}: site profile was made for other weights "
                          f"({info.get('model')}); make it again")
    content = profile_sha256(folder, name)
    if (folder / f"{name}.pt").exists():
        site = load_site_profile(bundle, folder, name)
    else:
        site = CxrBundle(bundle.model, dict(bundle.meta), bundle.device, bundle.path)  # a copy: the bundle is shared
    rec = info.get("recalibration")
    if rec:
        site.meta = dict(site.meta, threshold=dict(site.meta["threshold"], value=float(rec["threshold"]),
                                                   rule=recalibration_rule(name, rec)))
    site.meta["site_profile"] = dict(info, name=name, profile_sha256=content)
    return site


def recalibration_rule(name: str, rec: dict) -> str:
    return (f"site profile '{name}': the highest threshold keeping sensitivity >= {rec['target_sensitivity']:.2f} on "
            f"{rec['n']} local labelled films ({rec['n_pneumonia']} pneumonia / {rec['n_normal']} normal); there "
            f"sensitivity {rec['sensitivity']:.3f}, specificity {rec['specificity']:.3f}")


def describe(bundle: CxrBundle) -> str:
    """One line naming the site profile a bundle copy uses (or that it is the bundled model as is)."""
    return site_line(bundle.meta)


def site_line(meta: dict) -> str:
    """:func:`describe` from a bundle's metadata."""
    info = meta.get("site_profile")
    if not info:
        return NO_SITE
    parts = []
    if info.get("n_films"):
        parts.append(f"batch-norm statistics from {info['n_films']} local films")
    rec = info.get("recalibration")
    if rec:
        parts.append(f"local threshold {rec['threshold']:.3f} (sensitivity {rec['sensitivity']:.3f} "
                     f"[{rec['sensitivity_ci95'][0]:.3f}, {rec['sensitivity_ci95'][1]:.3f}], specificity "
                     f"{rec['specificity']:.3f} [{rec['specificity_ci95'][0]:.3f}, {rec['specificity_ci95'][1]:.3f}] "
                     f"on n = {rec['n']})")
    return f"Site profile '{info.get('name')}': " + ("; ".join(parts) or "no change")


def choose_threshold(y, p, target_sensitivity: float = 0.95) -> dict:
    """The highest threshold whose sensitivity on ``(y, p)`` is at least the target.

    The threshold lies halfway between the lowest probability that must be called pneumonia and
    the next lower probability of any film (so the set's counts hold, with a margin for new films).

    Args:
        y: ``(N,)`` labels, 1 = pneumonia. p: ``(N,)`` probabilities on the bundle's scale.

    Returns:
        ``{"threshold", "target_sensitivity", "n", "n_pneumonia", "n_normal", "sensitivity",
        "sensitivity_ci95", "specificity", "specificity_ci95"}`` (Wilson intervals).

    Raises:
        ValueError: fewer than :data:`MIN_POSITIVES` pneumonia or :data:`MIN_NEGATIVES` normal films,
            a target outside (0, 1], or non-finite probabilities.
    """
    y, p = np.asarray(y, dtype=int).ravel(), np.asarray(p, dtype=np.float64).ravel()
    if not 0 < target_sensitivity <= 1:
        raise ValueError(f"target sensitivity {target_sensitivity}: expected a number in (0, 1]")
    if len(y) != len(p) or not np.isfinite(p).all():
        raise ValueError("labels and probabilities must be the same length and finite")
    npos, nneg = int((y == 1).sum()), int((y == 0).sum())
    if npos < MIN_POSITIVES or nneg < MIN_NEGATIVES:
        raise ValueError(f"a local threshold needs at least {MIN_POSITIVES} pneumonia and {MIN_NEGATIVES} normal "
                         f"films in scope (got {npos} pneumonia, {nneg} normal): with fewer, the sensitivity it "
                         "promises cannot be told from chance; label more local films")
    need = int(np.ceil(target_sensitivity * npos - 1e-9))
    pos = np.sort(p[y == 1])[::-1]
    lowest = pos[need - 1]  # the need-th highest pneumonia probability must be called
    below = p[p < lowest]
    t = float((lowest + below.max()) / 2) if below.size else float(lowest)
    tp, tn = int((pos >= t).sum()), int((p[y == 0] < t).sum())
    return {"threshold": t, "target_sensitivity": float(target_sensitivity), "n": int(len(y)), "n_pneumonia": npos,
            "n_normal": nneg, "sensitivity": tp / npos, "sensitivity_ci95": wilson_interval(tp, npos),
            "specificity": tn / nneg, "specificity_ci95": wilson_interval(tn, nneg)}


def save_recalibration(bundle: CxrBundle, folder: str | Path, name: str, rec: dict) -> Path:
    """Store ``rec`` (:func:`choose_threshold`, plus what was scored) in profile ``name`` (created if absent)."""
    folder = site_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = read_profile(folder, check_name(name)) or {
        "name": name, "model": bundle.model_id, "model_sha256": bundle.meta.get("sha256"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if info.get("model_sha256") != bundle.meta.get("sha256"):
        raise BundleError(f"{folder / (name + '.json')}: site profile was made for other weights; adapt it again")
    info["recalibration"] = dict(rec, scale="the bundle's centred probability (bundled threshold "
                                            f"{float(bundle.meta['threshold']['value']):.3f})",
                                 created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    path = folder / f"{name}.json"
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path
