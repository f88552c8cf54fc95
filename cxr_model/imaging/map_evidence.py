"""One line for the reviewer under a map: how often a map of this kind pointed at radiologists' boxes.

A heat map invites trust that it has not earned unless its localisation was measured. The measured
figures live beside the weights: ``explain.json`` (``cxr-model pointing --write``: pointing game per
method and layer on the boxed adult films of the validation and test patients, for the 224 px network
and for the adult branch) and ``metadata.json["adult_branch"]["cross_validation"]``
(``cxr-model adult-branch cv --write``: the branch's shown map over 5 patient folds). This module
only reads them; nothing is computed.
"""
from __future__ import annotations

import json

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.explain import EXPLAIN_META, default_cam
from cxr_model.imaging.network import cam_layers


def _row(rows: list[dict], method: str, layer: str) -> dict | None:
    return next((r for r in rows or [] if r.get("method") == method and r.get("layer") == layer), None)


def map_evidence(bundle: CxrBundle, method: str, branch: bool) -> str:
    """The localisation record of ``method`` on the view that drew the map (the adult branch when ``branch``)."""
    view = bundle.branch if branch and bundle.branch is not None else bundle
    d_method, d_layer = default_cam(view)
    layer = (d_layer if method == d_method else None) or cam_layers(view.arch)[0]  # None: the last block
    try:
        d = json.loads((bundle.path / EXPLAIN_META).read_text())
    except (OSError, json.JSONDecodeError):
        return "Where this map points has not been measured for this model (no localisation table beside its weights)."
    if d.get("model_sha256") != bundle.meta.get("sha256"):
        return "Where this map points has not been measured for these weights (the localisation table is another model's)."
    key = "branch_" if view is not bundle else ""
    val, test = _row(d.get(f"{key}validation"), method, layer), _row(d.get(f"{key}test"), method, layer)
    if val is None or test is None:
        return f"Where {method} on {layer} points has not been measured for this model (see the model card)."
    parts = [f"validation {val['hits']}/{val['n']}", f"test {test['hits']}/{test['n']}"]
    cv = (bundle.meta.get("adult_branch") or {}).get("cross_validation") if view is not bundle else None
    if cv and cv.get("pointing") and (cv["map"]["method"], cv["map"]["layer"]) == (method, layer):
        parts.append(f"cross-validated {cv['pointing']['hits']}/{cv['pointing']['n']}")
    line = (f"How well this map points ({method} on {layer}{', adult branch' if view is not bundle else ''}): on boxed adult "
            f"pneumonia films its peak fell inside a radiologist's opacity box on {', '.join(parts)} (a random point: "
            f"{test['chance']:.0%} of the time). It shows what raised the score, not where disease is.")
    if view is bundle:
        line += " Children's films carry no boxes, so for a child it is unmeasured."
    return line
