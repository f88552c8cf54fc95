"""The report's numbers: metric rows with n and split, the threshold re-count, data summaries."""
import json

import numpy as np
import pandas as pd
import pytest

from cxr_model.imaging.report import analysis as A
from cxr_model.metrics import classification as M
from cxr_model.metrics.format import vitals_groups


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(4)
    n = 120
    label = rng.integers(0, 2, n)
    subtype = np.where(label == 0, "normal", rng.choice(["bacteria", "virus"], n))
    return pd.DataFrame({"path": [f"img{i}.png" for i in range(n)], "label": label,
                         "probability": np.clip(rng.random(n) * 0.7 + 0.3 * label, 0, 1),
                         "predicted": 0, "subtype": subtype, "group": [f"child{i}" for i in range(n)],
                         "height": 224, "width": rng.choice([224, 512], n)})


def test_every_row_carries_value_interval_n_and_split(predictions):
    a = A.analyse(predictions, 0.5, "kermany/val", n_resamples=300)
    keys = [r["key"] for r in a.rows]
    assert keys[:2] == ["auroc", "auprc"] and {"sensitivity", "specificity", "f1", "calibration_slope"} <= set(keys)
    for r in a.rows:
        assert r["split"] == "kermany/val" and r["n"] > 0
        if r["ci95"] is not None and not np.isnan(r["value"]):
            assert r["ci95"][0] <= r["value"] <= r["ci95"][1], r["key"]
    y, p = predictions["label"].to_numpy(), predictions["probability"].to_numpy()
    assert a.row("auroc")["value"] == pytest.approx(M.compute_auroc(y, p))
    assert a.row("sensitivity")["n"] == int(y.sum())
    assert a.row("specificity")["n"] == int((y == 0).sum())


def test_subgroups_are_the_categorical_columns_only(predictions):
    # path and group are identifiers, width has two values but is a size: it is categorical here
    assert A.subgroup_columns(predictions) == ["subtype"]
    a = A.analyse(predictions, 0.5, "s", n_resamples=200)
    assert [r["group"] for r in a.subgroups["subtype"]] == ["bacteria", "normal", "virus"]


def test_moving_the_threshold_equals_a_fresh_analysis(predictions):
    base = A.analyse(predictions, 0.5, "s", n_resamples=300)
    moved = A.at_threshold(base, predictions, 0.3, n_resamples=300)
    fresh = A.analyse(predictions, 0.3, "s", n_resamples=300)
    assert moved.confusion == fresh.confusion
    assert moved.rows == fresh.rows
    assert json.dumps(moved.subgroups) == json.dumps(fresh.subgroups)  # nan-aware equality
    assert moved.row("sensitivity")["value"] > base.row("sensitivity")["value"]


def test_operating_point_lies_on_the_roc_curve(predictions):
    a = A.analyse(predictions, 0.5, "s", n_resamples=100)
    op = a.operating_point()
    assert any(np.isclose(a.roc.x, op["fpr"]) & np.isclose(a.roc.y, op["tpr"]))


def test_data_summary_counts_classes_subtypes_and_sizes(predictions):
    s = A.data_summary(predictions, n_errors=2)
    assert s["n"] == 120 and s["n_errors"] == 2
    assert s["classes"]["NORMAL"] + s["classes"]["PNEUMONIA"] == 120
    assert s["classes"]["NORMAL"] == s["subtypes"]["normal"]
    assert s["sizes"]["distinct"] == 2 and sum(s["sizes"]["most_common"].values()) == 120
    adults = predictions.assign(subtype=[None] * 20 + list(predictions["subtype"][20:]))  # no subtype recorded
    assert A.data_summary(adults)["subtypes"]["not recorded"] == 20


def test_training_summary_reads_the_model_card():
    meta = {"name": "m", "version": "1", "threshold": {"value": 0.7, "rule": "Youden"},
            "training": {"data": "Kermany", "split": "by child", "counts": {"train": {"n": 10}}}}
    t = A.training_summary(meta)
    assert t["model"] == "m@1" and t["counts"] == {"train": {"n": 10}} and t["threshold_rule"] == "Youden"
    assert A.training_summary(None) == {}


def test_training_summary_gives_a_row_per_population_and_part_of_the_default_bundle(cxr_bundle):
    """Two-population bundles nest their counts (population -> part); the report's table needs them flat."""
    counts = A.training_summary(cxr_bundle.meta)["counts"]
    nested = cxr_bundle.meta["training"]["counts"]
    assert set(counts) == {f"{pop} {part}" for pop in nested for part in nested[pop]} >= {"child train", "adult test"}
    assert all(isinstance(c["n"], int) and c["n"] == c["pneumonia"] + c["normal"] for c in counts.values())
    assert counts["child test"]["n"] == 782 and counts["adult test"]["n"] == 113
    assert "adult branch" in A.training_summary(cxr_bundle.meta)["input"]  # adults are not read at 224 px only


def test_vitals_groups_flatten_nested_metrics():
    metrics = {"n": 800, "lstm_48h": {"auroc": 0.85, "auroc_ci95": [0.8, 0.9], "event1": 0.5},
               "baselines": {"news2_48h": {"auroc": 0.7}, "saps1": {"auroc": 0.68}}, "note": "x"}
    rows = vitals_groups(metrics)
    assert [r["group"] for r in rows] == ["lstm_48h", "baselines / news2_48h", "baselines / saps1"]
    assert rows[0]["event1"] == 0.5
