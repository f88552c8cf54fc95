"""``vitals evaluate``'s metrics.json: the alert and calibration blocks are there and their values
are what the stays' hourly risks give, recomputed here without the module's own helpers."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.evaluate import evaluate
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import load_outcomes, read_dir
from cxr_model.vitals.splits import read_split

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(settings, physionet_dir, tmp_path_factory):
    """200 held-out test stays of the bundled model, linked (not copied), evaluated as the CLI does."""
    d = tmp_path_factory.mktemp("vitals-eval")
    ids = read_split(settings.vitals_model_dir / "splits.csv", "test")[:200]
    (d / "records").mkdir()
    for i in ids:
        (d / "records" / f"{i}.txt").symlink_to(physionet_dir / "set-a" / f"{i}.txt")
    outcomes_file = physionet_dir / "Outcomes-a.txt"
    evaluate(d / "records", outcomes_file, settings.vitals_model_dir, d / "out")
    metrics = json.loads((d / "out" / "metrics.json").read_text())
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    records, errors = read_dir(d / "records")
    assert not errors
    outcomes = load_outcomes(outcomes_file)
    rids = [r.record_id for r in records]
    risk = bundle.risk([to_grid(r) for r in records])
    y = np.array([int(outcomes[i]["In-hospital_death"]) for i in rids])
    survival = np.array([outcomes[i].get("Survival", -1) for i in rids], dtype=float)
    saps = np.array([outcomes[i].get("SAPS-I", -1) for i in rids], dtype=float)  # -1: unknown, left out
    assert metrics["saps1"]["n"] == int((saps >= 0).sum()) > 0
    assert metrics["saps1"]["auroc"] == pytest.approx(roc_auc_score(y[saps >= 0], saps[saps >= 0]), abs=1e-9)
    return metrics, risk, y, np.where(survival < 0, np.nan, survival), bundle.threshold


def test_metrics_json_has_the_alert_and_calibration_blocks(run, settings):
    m, risk, y, _, threshold = run
    key = "ensemble" if load_vitals_bundle(settings.vitals_model_dir).trees is not None else "lstm"  # the bundle's model
    assert {"alerts", "calibration_48h", f"{key}_24h", f"{key}_48h", "news2_24h", "news2_48h", "lstm_48h",
            "alerts_news2_5", "alerts_news2_7", "alerts_combined", "saps1"} <= m.keys()
    assert m["n"] == len(y) == 200 and m["n_errors"] == 0
    assert m[f"{key}_48h"]["auroc"] == pytest.approx(roc_auc_score(y, risk[:, -1]), abs=1e-9)
    assert m[f"{key}_24h"]["auroc"] == pytest.approx(roc_auc_score(y, risk[:, 23]), abs=1e-9)
    assert m[f"{key}_48h"]["brier"] == pytest.approx(np.mean((risk[:, -1] - y) ** 2))
    assert m[f"{key}_48h"]["threshold"] == threshold
    assert (m["news2_48h"]["threshold"], m["news2_48h_ge7"]["threshold"]) == (5, 7)  # NEWS2 at its clinical triggers


def test_alert_block_recomputed_from_the_hourly_risk(run):
    m, risk, y, survival, threshold = run
    a = m["alerts"]
    above = risk >= threshold
    episodes = int(above[:, 0].sum() + (above[:, 1:] & ~above[:, :-1]).sum())
    days = risk.size / 24
    assert a["threshold"] == threshold and a["n"] == len(y)
    assert a["alert_episodes"] == episodes and a["patient_days"] == pytest.approx(days)
    assert a["alerts_per_patient_day"] == pytest.approx(episodes / days)
    alerted = above.any(axis=1)
    assert a["stays_alerting"] == pytest.approx(alerted.mean())
    assert a["deaths_alerted"] == pytest.approx(alerted[y == 1].mean())
    assert a["survivors_alerted"] == pytest.approx(alerted[y == 0].mean())
    first = np.array([np.flatnonzero(row)[0] + 1 if row.any() else 0 for row in above])  # 1-based hour
    dead_alerted = (y == 1) & alerted
    assert a["median_first_alert_hour_deaths"] == pytest.approx(np.median(first[dead_alerted]))
    known = dead_alerted & ~np.isnan(survival)
    assert a["n_lead_time"] == int(known.sum()) > 0
    assert a["median_lead_time_h"] == pytest.approx(np.median(24 * survival[known] - first[known]))


def test_calibration_block_recomputed_from_the_48h_risk(run):
    m, risk, y, _, _ = run
    c = m["calibration_48h"]
    p = np.clip(risk[:, -1], 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))
    lr = LogisticRegression(C=1e10, tol=1e-12, max_iter=10_000).fit(logit[:, None], y)
    assert c["slope"] == pytest.approx(lr.coef_[0, 0], abs=1e-4)
    assert c["intercept"] == pytest.approx(lr.intercept_[0], abs=1e-4)
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum((bins == b).mean() * abs(y[bins == b].mean() - p[bins == b].mean()) for b in np.unique(bins))
    assert c["ece"] == pytest.approx(ece, abs=1e-6)
    assert np.isfinite(c["citl"])
    # the reliability diagram's bins (a held-out run): stays per tenth of risk, their mean risk and death rate
    raw = np.minimum((risk[:, -1] * 10).astype(int), 9)
    assert [b["bin"] for b in c["bins"]] == [f"{k / 10:.1f}-{(k + 1) / 10:.1f}" for k in np.unique(raw)]
    for b, k in zip(c["bins"], np.unique(raw)):
        assert b["n"] == int((raw == k).sum())
        assert b["mean_predicted"] == pytest.approx(risk[raw == k, -1].mean())
        assert b["observed"] == pytest.approx(y[raw == k].mean())


def test_a_split_scores_only_its_stays_and_the_header_says_what_was_read(settings, physionet_dir, tmp_path):
    # 6 test and 6 train stays of the bundle's split, linked into one folder, plus 55 unreadable files
    d = tmp_path / "records"
    d.mkdir()
    test_ids = read_split(settings.vitals_model_dir / "splits.csv", "test")[:6]
    train_ids = read_split(settings.vitals_model_dir / "splits.csv", "train")[:6]
    for i in test_ids + train_ids:
        (d / f"{i}.txt").symlink_to(physionet_dir / "set-a" / f"{i}.txt")
    outcomes = physionet_dir / "Outcomes-a.txt"
    out = tmp_path / "a" / "b"  # made, parents and all
    m = evaluate(d, outcomes, settings.vitals_model_dir, out, split="test")
    n_test = len(read_split(settings.vitals_model_dir / "splits.csv", "test"))
    assert (m["split"], m["n"], m["n_errors"]) == ("test", 6, n_test - 6)  # the split's other stays: missing, counted
    assert all(e.split(".txt")[0].isdigit() and int(e.split(".txt")[0]) not in train_ids for e in m["errors"])
    assert (m["model"], m["records"]) == (load_vitals_bundle(settings.vitals_model_dir).model_id, str(d))
    assert json.loads((out / "metrics.json").read_text())["n"] == 6
    for k in range(55):
        (d / f"bad{k:02d}.txt").write_text("not a record\n")
    m = evaluate(d, outcomes, settings.vitals_model_dir, out)  # into the same folder again, every file
    assert (m["split"], m["n"], m["n_errors"], len(m["errors"])) == ("all", 12, 55, 50)  # 50 named, all counted
    bad = tmp_path / "bad"
    bad.mkdir()
    for k in range(3):
        (bad / f"{k}.txt").write_text("not a record\n")
    m = evaluate(bad, outcomes, settings.vitals_model_dir, tmp_path / "c")  # nothing readable: named, not raised
    assert (m["n"], m["n_errors"]) == (0, 3) and all("header is not" in e for e in m["errors"])
