"""The line under a map: the measured localisation of that kind of map, read from the files beside the weights."""
from __future__ import annotations

import json
import shutil

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.explain import EXPLAIN_META, default_cam
from cxr_model.imaging.map_evidence import map_evidence


def _row(rows, method, layer):
    return next(r for r in rows if (r["method"], r["layer"]) == (method, layer))


def test_the_branch_map_line_gives_its_validation_test_and_cross_validated_hits(cxr_bundle):
    d = json.loads((cxr_bundle.path / EXPLAIN_META).read_text())
    method, layer = default_cam(cxr_bundle.branch)
    val, test = _row(d["branch_validation"], method, layer), _row(d["branch_test"], method, layer)
    cv = cxr_bundle.meta["adult_branch"]["cross_validation"]["pointing"]
    line = map_evidence(cxr_bundle, method, branch=True)
    assert f"({method} on {layer}, adult branch)" in line
    assert (f"validation {val['hits']}/{val['n']}, test {test['hits']}/{test['n']}, cross-validated {cv['hits']}/{cv['n']}"
            in line)
    assert "not where disease is" in line and "for a child" not in line


def test_the_224_px_map_line_uses_that_networks_table_and_says_children_are_unmeasured(cxr_bundle):
    d = json.loads((cxr_bundle.path / EXPLAIN_META).read_text())
    method, layer = default_cam(cxr_bundle)
    val, test = _row(d["validation"], method, layer), _row(d["test"], method, layer)
    line = map_evidence(cxr_bundle, method, branch=False)
    assert f"validation {val['hits']}/{val['n']}, test {test['hits']}/{test['n']} (" in line  # no CV: the 224 px head was not cross-validated
    assert "adult branch" not in line and "for a child it is unmeasured" in line
    # another method is read on the last block (its own row), not on the default's layer
    other = next(m for m in ("GradCAM", "LayerCAM") if m != method)
    o_test = _row(d["test"], other, "layer4")
    assert f"({other} on layer4)" in map_evidence(cxr_bundle, other, branch=False)
    assert f"test {o_test['hits']}/{o_test['n']}" in map_evidence(cxr_bundle, other, branch=False)


def test_a_method_or_weights_without_a_measurement_say_so(cxr_bundle, tmp_path):
    assert "has not been measured for this model" in map_evidence(cxr_bundle, "ScoreCAM", branch=False)  # too slow to measure
    copy = tmp_path / "bundle"
    shutil.copytree(cxr_bundle.path, copy)
    d = json.loads((copy / EXPLAIN_META).read_text())
    d["model_sha256"] = "0" * 64  # measured on other weights
    (copy / EXPLAIN_META).write_text(json.dumps(d))
    other = load_cxr_bundle(copy, device="cpu")
    assert "not been measured for these weights" in map_evidence(other, "HiResCAM", branch=True)
    (copy / EXPLAIN_META).unlink()
    assert "no localisation table" in map_evidence(other, "GradCAM", branch=False)
