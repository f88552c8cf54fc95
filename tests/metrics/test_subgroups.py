"""The subgroup table: one row per value of any column, each equal to the metrics of its subset."""
import math

import numpy as np
import pytest

from cxr_model.metrics import classification as M
from cxr_model.metrics.subgroups import MISSING, subgroup_table


def test_each_row_equals_the_metrics_of_its_subset():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) * 0.6 + 0.3 * y
    g = rng.choice(["site A", "site B", "site C"], 200)
    rows = subgroup_table(y, s, g, 0.5, n_resamples=500)
    assert [r["group"] for r in rows] == ["site A", "site B", "site C"]
    assert sum(r["n"] for r in rows) == 200
    for r in rows:
        m = g == r["group"]
        assert r["n_positive"] == int(y[m].sum())
        assert r["auroc"] == pytest.approx(M.compute_auroc(y[m], s[m]))
        assert r["auroc_ci95"][0] <= r["auroc"] <= r["auroc_ci95"][1]
        for k, v in M.compute_threshold_metrics(y[m], s[m], 0.5).items():
            assert r[k] == pytest.approx(v)
            assert r[f"{k}_ci95"][0] <= v <= r[f"{k}_ci95"][1]


def test_kermany_style_subtypes_single_class_groups_have_undefined_metrics():
    y = [0, 0, 1, 1, 1, 1]
    s = [0.2, 0.7, 0.9, 0.3, 0.8, 0.6]
    rows = {r["group"]: r for r in subgroup_table(y, s, ["normal", "normal", "bacteria", "bacteria", "virus", "virus"], 0.5)}
    assert set(rows) == {"normal", "bacteria", "virus"}
    assert rows["bacteria"]["sensitivity"] == 0.5 and rows["virus"]["sensitivity"] == 1.0
    assert rows["normal"]["specificity"] == 0.5
    for g in ("bacteria", "virus"):
        assert math.isnan(rows[g]["auroc"]) and math.isnan(rows[g]["specificity"])
        assert all(math.isnan(v) for v in rows[g]["auroc_ci95"])


def test_missing_values_form_their_own_group():
    rows = subgroup_table([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.4], ["a", None, "", float("nan")], 0.5)
    assert {r["group"]: r["n"] for r in rows} == {"a": 1, MISSING: 3}


def test_numeric_groups_and_empty_input():
    assert [r["group"] for r in subgroup_table([0, 1], [0.2, 0.8], [224, 512], 0.5)] == ["224", "512"]
    assert subgroup_table([], [], [], 0.5) == []


def test_groups_of_the_wrong_length_are_an_error():
    with pytest.raises(ValueError, match="groups has 1 values"):
        subgroup_table([0, 1], [0.2, 0.8], ["a"], 0.5)


def test_rows_count_both_classes_and_carry_the_callers_seed_level_and_resamples():
    rng = np.random.default_rng(4)
    y = np.r_[np.ones(30), np.zeros(50), [1], np.zeros(9)].astype(int)
    s = np.clip(np.r_[rng.beta(5, 2, 30), rng.beta(2, 5, 50), [0.7], rng.beta(2, 5, 9)], 0, 1)
    g = ["a"] * 80 + ["b"] * 10  # b: one pneumonia film among ten
    a, b = subgroup_table(y, s, g, 0.5, n_resamples=300, seed=7, alpha=0.1)
    assert (a["n"], a["n_positive"], a["n_negative"]) == (80, 30, 50) and (b["n_positive"], b["n_negative"]) == (1, 9)
    ya, sa = y[:80], s[:80]
    assert a["auroc_ci95"] == M.bootstrap_ci(M.compute_auroc, ya, sa, n_resamples=300, seed=7, alpha=0.1)
    cis = M.threshold_metric_cis(ya, sa, 0.5, n_resamples=300, seed=7, alpha=0.1)
    assert {k: a[f"{k}_ci95"] for k in cis} == cis  # every interval, the bootstrap ones (F1) included
    default = subgroup_table(y, s, g, 0.5)[0]  # 2,000 resamples, seed 0, 95 %: the whole set's defaults
    assert default["auroc_ci95"] == M.bootstrap_ci(M.compute_auroc, ya, sa, n_resamples=2000, seed=0, alpha=0.05)
    assert default["f1_ci95"] == M.threshold_metric_cis(ya, sa, 0.5, n_resamples=2000, seed=0, alpha=0.05)["f1"]
    assert not any(math.isnan(v) for v in b["auroc_ci95"])  # one pneumonia film is enough to resample an AUROC
    only = subgroup_table([1, 1, 1], [0.2, 0.6, 0.9], ["x"] * 3, 0.5)[0]
    assert all(math.isnan(v) for v in only["auroc_ci95"])  # one class: no interval, not a number from nothing
