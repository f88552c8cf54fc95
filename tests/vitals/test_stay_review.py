"""Subgroups, failure cases and the predictions table of a vitals evaluation: groups from the descriptors,
the model judged at its fixed threshold in every group, per-stay rows kept out of metrics.json."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxr_model.vitals import stay_review as R
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.evaluate import evaluate
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.news2 import news2_grid
from cxr_model.vitals.reader import load_outcomes, read_dir
from cxr_model.vitals.splits import read_split


@pytest.mark.parametrize("age, band", [(15, "under 65"), (64.99, "under 65"), (65, "65 to 79"), (79.99, "65 to 79"),
                                       (80, "80 and over"), (104, "80 and over"), (float("nan"), "unknown"),
                                       (None, "unknown"), ("x", "unknown")])
def test_age_bands_and_their_edges(age, band):
    assert R.age_band(age) == band


def test_groups_from_the_physionet_codes():
    d = [{"ICUType": 1, "Gender": 0, "Age": 50}, {"ICUType": 4.0, "Gender": 1.0, "Age": 90},
         {"ICUType": 5, "Gender": -1}, {"ICUType": float("nan"), "Gender": float("nan"), "Age": 70}, {}]
    assert R.stay_groups(d) == {
        "icu_type": ["Coronary care unit", "Surgical ICU", "unknown", "unknown", "unknown"],
        "age_band": ["under 65", "80 and over", "unknown", "65 to 79", "unknown"],
        "sex": ["female", "male", "unknown", "unknown", "unknown"]}


def _cohort():
    """40 medical ICU stays (10 deaths) whose scores rank well, 20 surgical (5 deaths) that rank badly, 3 of
    unknown ICU type; ages and sexes alternate."""
    rng = np.random.default_rng(4)
    y = np.r_[np.repeat([1, 0], [10, 30]), np.repeat([1, 0], [5, 15]), [1, 0, 0]]
    s = np.r_[rng.uniform(0.5, 0.9, 10), rng.uniform(0.0, 0.6, 30), rng.uniform(0.0, 0.3, 5), rng.uniform(0.2, 0.5, 15),
              [0.9, 0.1, 0.2]]
    icu = [3] * 40 + [4] * 20 + [7] * 3
    desc = [{"ICUType": t, "Age": (50, 70, 85)[i % 3], "Gender": i % 2} for i, t in enumerate(icu)]
    news2 = rng.integers(0, 12, y.size).astype(float)
    return y, s, news2, desc


def test_subgroup_rows_at_the_fixed_threshold_with_news2_beside(tmp_path):
    y, s, news2, desc = _cohort()
    rows = R.subgroup_rows(y, s, news2, desc, threshold=0.55, n_boot=200)
    assert [(r["grouping"], r["group"]) for r in rows] == [
        ("ICU type", "Medical ICU"), ("ICU type", "Surgical ICU"), ("ICU type", "unknown"),
        ("age", "under 65"), ("age", "65 to 79"), ("age", "80 and over"), ("sex", "female"), ("sex", "male")]
    med = rows[0]
    m = np.arange(40)
    assert (med["n"], med["n_positive"]) == (40, 10)
    assert med["observed_mortality"] == 0.25 and med["mean_probability"] == pytest.approx(s[m].mean())
    assert med["auroc"] == pytest.approx(roc_auc_score(y[m], s[m]))
    alert = s[m] >= 0.55  # the model's own threshold, never one refitted to the group
    se, ppv = (alert & (y[m] == 1)).sum() / 10, (alert & (y[m] == 1)).sum() / alert.sum()
    assert (med["sensitivity"], med["ppv"]) == pytest.approx((se, ppv)) and med["event1"] == pytest.approx(min(se, ppv))
    assert med["news2_auroc"] == pytest.approx(roc_auc_score(y[m], news2[m]))
    lo, hi = med["news2_auroc_ci95"]
    assert lo < med["news2_auroc"] < hi
    surg = rows[1]
    assert surg["event1"] == 0.0 and surg["auroc"] < 0.5  # no surgical death reaches the threshold
    assert rows[2] == {"grouping": "ICU type", "group": "unknown", "n": 3, "n_positive": 1, "too_few": True}
    assert sum(r["n"] for r in rows if r["grouping"] == "sex") == y.size


def test_stay_rows_and_failure_cases():
    risk = np.tile(np.linspace(0.05, 0.2, 48), (4, 1))
    risk[1, 30:] = 0.6  # alerts from hour 31
    risk[2] = 0.01
    risk[3, 10] = 0.9
    news2 = np.zeros((4, 48))
    news2[0, 4:] = 6
    rows = R.stay_rows([11, 12, 13, 14], np.array([1, 0, 1, 0]), risk, news2,
                       [{"ICUType": 2, "Age": 70, "Gender": 1}] * 4, np.array([12, np.nan, 9, 15]),
                       np.array([3, np.nan, 1, 800]), threshold=0.5)
    assert rows[0] == {"record_id": 11, "in_hospital_death": 1, "survival_days": 3.0,
                       "icu_type": "Cardiac surgery recovery unit", "age_band": "65 to 79", "sex": "male",
                       "risk_24h": pytest.approx(risk[0, 23]), "risk_48h": pytest.approx(0.2),
                       "model_first_alert_hour": None, "news2_max_48h": 6, "news2_first_5_hour": 5, "saps1": 12.0}
    assert [r["model_first_alert_hour"] for r in rows] == [None, 31, None, 11]
    assert (rows[1]["saps1"], rows[1]["survival_days"]) == (None, None)
    assert list(rows[0]) == R.STAY_COLUMNS
    cases = R.failure_cases(rows, k=1)
    assert [r["record_id"] for r in cases["missed_deaths"]] == [13]  # the death with the lowest 48 h risk
    assert [r["record_id"] for r in cases["false_alarms"]] == [12]  # the survivor with the highest
    both = R.failure_cases(rows, k=5)
    assert [r["record_id"] for r in both["missed_deaths"]] == [13, 11]
    assert [r["record_id"] for r in both["false_alarms"]] == [12, 14]
    tied = R.failure_cases([dict(rows[1], record_id=99), rows[1]], k=2)
    assert [r["record_id"] for r in tied["false_alarms"]] == [12, 99]  # ties by record id


@pytest.mark.slow
def test_evaluate_writes_the_stay_rows_beside_aggregate_metrics(settings, physionet_dir, tmp_path):
    d = tmp_path / "records"
    d.mkdir()
    for i in read_split(settings.vitals_model_dir / "splits.csv", "test")[:120]:
        (d / f"{i}.txt").symlink_to(physionet_dir / "set-a" / f"{i}.txt")
    m = evaluate(d, physionet_dir / "Outcomes-a.txt", settings.vitals_model_dir, tmp_path / "out")
    text = (tmp_path / "out" / "metrics.json").read_text()
    assert "record_id" not in text and "failure" not in text  # metrics.json holds aggregates only
    records, _ = read_dir(d)
    grids = [to_grid(r) for r in records]
    outcomes = load_outcomes(physionet_dir / "Outcomes-a.txt")
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    risk = bundle.risk(grids)
    y = np.array([int(outcomes[g.record_id]["In-hospital_death"]) for g in grids])
    icu = np.array([g.descriptors["ICUType"] for g in grids])
    checked = 0
    for row in (r for r in m["subgroups_48h"] if r["grouping"] == "ICU type" and not r.get("too_few")):
        code = next(k for k, v in R.ICU_TYPES.items() if v == row["group"])
        g = icu == code
        assert (row["n"], row["n_positive"]) == (int(g.sum()), int(y[g].sum()))
        if not 0 < y[g].sum() < g.sum():  # a group without deaths: nothing to rank
            assert np.isnan(row["auroc"]) and np.isnan(row["news2_auroc"])
            continue
        checked += 1
        assert row["auroc"] == pytest.approx(roc_auc_score(y[g], risk[g, -1]), abs=1e-9)
        nmax = np.array([news2_grid(x).total.max() for x, keep in zip(grids, g) if keep])
        assert row["news2_auroc"] == pytest.approx(roc_auc_score(y[g], nmax), abs=1e-9)
    assert checked >= 3
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv", dtype=str, keep_default_na=False)
    assert list(pred.columns) == R.STAY_COLUMNS and len(pred) == len(grids) == m["n"]
    order = [g.record_id for g in grids]
    assert pred["record_id"].astype(int).tolist() == order
    np.testing.assert_allclose(pred["risk_48h"].astype(float), risk[:, -1], atol=1e-6)
    first = [str(int(np.argmax(r >= bundle.threshold)) + 1) if (r >= bundle.threshold).any() else "" for r in risk]
    assert pred["model_first_alert_hour"].tolist() == first  # whole hours, blank when it never alerted
    assert not pred[["survival_days", "saps1", "news2_first_5_hour"]].apply(lambda c: c.str.endswith(".0")).any().any()
    cases = json.loads((tmp_path / "out" / "failure_cases.json").read_text())
    deaths = pred[pred["in_hospital_death"] == "1"]
    lowest = deaths.assign(r=deaths["risk_48h"].astype(float)).sort_values(["r", "record_id"])["record_id"]
    assert [str(c["record_id"]) for c in cases["missed_deaths"]] == lowest.head(10).tolist()
    assert (cases["model"], cases["split"], cases["threshold"]) == (bundle.model_id, "all", bundle.threshold)


@pytest.mark.parametrize("desc, line", [
    ({"ICUType": 3, "Age": 71.6, "Gender": 1, "Weight": 80.2}, "Medical ICU · 72 years · male · 80 kg"),
    ({"ICUType": 2.0, "Age": 54, "Gender": 0, "Weight": float("nan")}, "Cardiac surgery recovery unit · 54 years · female"),
    ({"ICUType": 9, "Age": None, "Gender": -1, "Weight": "?"}, "ICU type, age and sex not recorded"),
    ({}, "ICU type, age and sex not recorded"),
    ({"Age": 90}, "90 years")])
def test_the_patient_line_names_only_what_was_recorded(desc, line):
    assert R.describe_stay(desc) == line


def test_group_size_edges_intervals_and_no_internal_keys():
    from cxr_model.metrics.classification import bootstrap_ci, compute_auroc

    # coronary care (sorted first) has 9 stays: counted only, and the groups after it are still measured;
    # medical ICU has exactly 10 stays and one death: measured, NEWS2 beside it too
    y = np.r_[np.zeros(9), [1], np.zeros(9), np.tile([1, 0, 0, 0, 0], 4)]
    s = np.r_[np.linspace(0.1, 0.5, 9), [0.8], np.linspace(0.1, 0.7, 9), np.linspace(0.2, 0.9, 20)]
    news2 = np.r_[np.arange(9), [9], np.arange(9), np.arange(20) % 11].astype(float)
    desc = [{"ICUType": 1}] * 9 + [{"ICUType": 3}] * 10 + [{"ICUType": 4}] * 20
    rows = [r for r in R.subgroup_rows(y, s, news2, desc, threshold=0.5, n_boot=150) if r["grouping"] == "ICU type"]
    assert [(r["group"], r["n"], r.get("too_few", False)) for r in rows] == [
        ("Coronary care unit", 9, True), ("Medical ICU", 10, False), ("Surgical ICU", 20, False)]
    med, surg = rows[1], rows[2]
    assert med["n_positive"] == 1 and med["news2_auroc"] == pytest.approx(roc_auc_score(y[9:19], news2[9:19]))
    m = slice(19, 39)  # the intervals use the caller's resamples, the same draws as the whole set's
    assert 0.3 < surg["auroc"] < 0.7 and surg["auroc_ci95"][1] - surg["auroc_ci95"][0] > 0.2  # an interval to move
    assert surg["auroc_ci95"] == bootstrap_ci(compute_auroc, y[m].astype(int), s[m], n_resamples=150)
    assert surg["news2_auroc_ci95"] == bootstrap_ci(compute_auroc, y[m].astype(int), news2[m], n_resamples=150)
    assert not [k for r in rows for k in r if k.endswith("_n")]  # subgroup_table's denominators stay inside


def test_alert_hours_count_a_value_exactly_at_the_trigger_and_unknown_survival():
    risk = np.full((1, 48), 0.2)
    risk[0, 5:] = 0.5  # exactly the threshold from hour 6
    news2 = np.zeros((1, 48))
    news2[0, 2:] = 5  # exactly NEWS2's urgent trigger from hour 3
    (row,) = R.stay_rows([7], np.array([0]), risk, news2, [{}], np.array([np.nan]), None, threshold=0.5)
    assert (row["model_first_alert_hour"], row["news2_first_5_hour"]) == (6, 3)
    assert row["survival_days"] is None and row["saps1"] is None and row["icu_type"] == "unknown"


def test_the_held_out_note_for_a_patients_icu_type():
    test = {"ensemble_48h": {"auroc": 0.879, "n": 800},
            "subgroups_48h": [
                {"grouping": "ICU type", "group": "Medical ICU", "n": 281, "n_positive": 52, "auroc": 0.7914,
                 "auroc_ci95": [0.731, 0.8463]},
                {"grouping": "ICU type", "group": "Coronary care unit", "n": 6, "n_positive": 1, "too_few": True},
                {"grouping": "age", "group": "Medical ICU", "n": 1, "n_positive": 0, "too_few": True}]}
    assert R.held_out_note({"ICUType": 3}, test) == (
        "On held-out Medical ICU stays the model's 48 h AUROC was 0.791 [0.731, 0.846] (n = 281, 52 deaths), "
        "against 0.879 on all 800 held-out stays.")
    assert R.held_out_note({"ICUType": 1.0}, test) == ("Too few held-out Coronary care unit stays (n = 6) to say how "
                                                       "well the model ranks them.")
    assert R.held_out_note({"ICUType": 4}, test) is None  # no row for it
    assert R.held_out_note({}, test) is None and R.held_out_note({"ICUType": 3}, None) is None
    assert R.held_out_note({"ICUType": 3}, {"ensemble_48h": {"auroc": 0.9, "n": 5}}) is None  # a run without subgroups
    lstm = {"lstm_48h": {"auroc": 0.85, "n": 700}, "subgroups_48h": test["subgroups_48h"]}  # an LSTM-only bundle
    assert R.held_out_note({"ICUType": 3}, lstm).endswith("against 0.850 on all 700 held-out stays.")
