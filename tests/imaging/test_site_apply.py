"""``apply_site`` with a recalibration-only profile (no adapted weights), and how a profile is named.

From a mutation run over ``imaging.site``: the profile without a ``.pt`` (a site that only set its own
threshold) was not exercised, nor the wording of the site line and the refusals. The bundle is the real
bundled model; the labelled set is generated (the rule itself is tested in test_site.py).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from cxr_model.imaging.site import (NO_SITE, apply_site, check_name, choose_threshold, profile_sha256,
                                    recalibration_rule, save_recalibration, site_line)
from cxr_model.registry import BundleError


@pytest.fixture
def rec():
    return choose_threshold([1] * 12 + [0] * 6, np.r_[np.linspace(0.30, 0.95, 12), np.linspace(0.05, 0.60, 6)], 0.9)


def test_a_recalibration_only_profile_changes_the_threshold_of_a_copy_and_nothing_else(cxr_bundle, rec, tmp_path):
    before = json.dumps(cxr_bundle.meta, sort_keys=True, default=str)
    path = save_recalibration(cxr_bundle, tmp_path, "ward-a", rec)
    assert not (tmp_path / "ward-a.pt").exists()
    site = apply_site(cxr_bundle, "ward-a", tmp_path)
    assert site is not cxr_bundle and site.model is cxr_bundle.model  # same network, not a second load
    assert (site.device, site.path) == (cxr_bundle.device, cxr_bundle.path)
    assert site.threshold == rec["threshold"] != cxr_bundle.threshold
    assert site.meta["threshold"] == dict(cxr_bundle.meta["threshold"], value=rec["threshold"],
                                          rule=recalibration_rule("ward-a", rec))  # the bundle's other keys kept
    assert {k: v for k, v in site.meta.items() if k not in ("threshold", "site_profile")} == \
        {k: v for k, v in cxr_bundle.meta.items() if k != "threshold"}
    profile = site.meta["site_profile"]
    assert profile["name"] == "ward-a" and profile["profile_sha256"] == profile_sha256(tmp_path, "ward-a")
    assert profile["recalibration"] == json.loads(path.read_text())["recalibration"]
    assert site.site_profile == "ward-a"
    assert json.dumps(cxr_bundle.meta, sort_keys=True, default=str) == before  # the shared bundle is unchanged


def test_a_saved_profile_is_readable_json_stamped_in_utc(cxr_bundle, rec, tmp_path):
    path = save_recalibration(cxr_bundle, tmp_path, "ward-b", rec)
    text = path.read_text()
    info = json.loads(text)
    assert text.startswith('{\n  "name": "ward-b",') and text.endswith("}\n")  # indented for a person to read
    assert info["created"].endswith("+00:00") and info["recalibration"]["created"].endswith("+00:00")


def test_the_site_line_names_each_part_of_a_profile(rec):
    s, sp = rec["sensitivity_ci95"], rec["specificity_ci95"]
    threshold = (f"local threshold {rec['threshold']:.3f} (sensitivity {rec['sensitivity']:.3f} [{s[0]:.3f}, "
                 f"{s[1]:.3f}], specificity {rec['specificity']:.3f} [{sp[0]:.3f}, {sp[1]:.3f}] on n = 18)")
    assert s[0] < s[1] and sp[0] < sp[1]
    assert site_line({"site_profile": {"name": "x", "recalibration": rec}}) == f"Site profile 'x': {threshold}"
    assert site_line({"site_profile": {"name": "x", "n_films": 40, "recalibration": rec}}) == \
        f"Site profile 'x': batch-norm statistics from 40 local films; {threshold}"
    assert site_line({"site_profile": {"name": "x"}}) == "Site profile 'x': no change"
    assert site_line({}) == NO_SITE


def test_refusals_name_the_profile_and_what_to_do(cxr_bundle, tmp_path):
    with pytest.raises(BundleError, match=rf"^{tmp_path / 'nope.json'}: no such site profile \(see `cxr-model site"):
        apply_site(cxr_bundle, "nope", tmp_path)
    (tmp_path / "old.json").write_text(json.dumps({"name": "old", "model": "x@0", "model_sha256": "0" * 64}))
    with pytest.raises(BundleError, match=rf"^{tmp_path / 'old.json'}: site profile was made for other weights "
                                          r"\(x@0\); make it again$"):
        apply_site(cxr_bundle, "old", tmp_path)
    with pytest.raises(BundleError, match=r"^'\.\./up': a site name is letters, digits"):
        apply_site(cxr_bundle, "../up", tmp_path)
    with pytest.raises(ValueError, match=r"^None: a site name is letters, digits, '\.', '_' or '-' \(at most 64\)$"):
        check_name(None)


def test_a_site_folder_inside_the_data_folder_says_where_else_to_write(cxr_bundle, rec, data_dir, monkeypatch):
    monkeypatch.setenv("CXR_DATA_DIR", str(data_dir))
    with pytest.raises(ValueError, match="not written inside the read-only data folder .*; set CXR_SITE_DIR to another "
                                         "folder$"):
        save_recalibration(cxr_bundle, data_dir / "sites", "ward-c", rec)


def test_the_threshold_rule_says_why_it_refuses(rec):
    with pytest.raises(ValueError, match="^labels and probabilities must be the same length and finite$"):
        choose_threshold([1] * 12, [0.5] * 11)
    with pytest.raises(ValueError, match=r"\(got 9 pneumonia, 6 normal\): with fewer, the sensitivity it promises "
                                         r"cannot be told from chance; label more local films$"):
        choose_threshold([1] * 9 + [0] * 6, np.linspace(0, 1, 15))
