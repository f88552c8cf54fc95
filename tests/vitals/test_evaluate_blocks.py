"""``metrics_for``'s groups on synthetic scores: which threshold each score is read at, what each block
holds; alert summaries at their empty edges; ``score_grids`` on generated records; the reader's
dropped-readings summary (the real-stay checks are in test_evaluate_metrics.py)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from cxr_model.metrics.classification import bootstrap_ci, compute_auroc, compute_brier, compute_event1
from cxr_model.metrics.curves import compute_auprc
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.evaluate import Scored, alert_summary, dropped_summary, metrics_for, score_grids
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.news2 import news2_grid
from cxr_model.vitals.reader import read_record

N = 120


def _scored(components: bool = True) -> tuple[Scored, dict]:
    rng = np.random.default_rng(7)
    y = (rng.random(N) < 0.3).astype(np.int64)
    y[:2] = [0, 1]
    risk = {k: np.clip(0.3 * y[:, None] + rng.random((N, 48)) * 0.7, 0, 1) for k in ("lstm", "gbt", "ensemble")}
    saps = rng.integers(5, 25, N).astype(float) + 4 * y
    saps[::7] = np.nan
    news2_hourly = rng.integers(0, 10, (N, 48)).astype(float)
    scored = Scored(record_ids=list(range(N)), labels=y, risk=risk["ensemble" if components else "lstm"],
                    news2_max={w: news2_hourly[:, :w].max(axis=1) for w in (24, 48)}, saps1=saps,
                    survival_days=np.where(y == 1, rng.integers(3, 30, N), np.nan).astype(float),
                    components=risk if components else None, news2_hourly=news2_hourly)
    meta = {"threshold": {"value": 0.55}, "components": {"thresholds_val": {"lstm": 0.6, "gbt": 0.5, "ensemble": 0.1}},
            "comparators": {"saps1_threshold": 17.0}}
    return scored, meta


def _sens_ppv(y, s, t):
    called = s >= t
    return (called & (y == 1)).sum() / (y == 1).sum(), (called & (y == 1)).sum() / called.sum()


def test_each_score_is_read_at_its_own_threshold_with_its_own_block():
    scored, meta = _scored()
    y = scored.labels
    m = metrics_for(scored, meta, n_boot=50)
    expected = {"lstm": 0.6, "gbt": 0.5, "ensemble": 0.55}  # the bundle's model at the bundle's threshold
    for w in (24, 48):
        for name, thr in expected.items():
            b, s = m[f"{name}_{w}h"], scored.components[name][:, w - 1]
            se, ppv = _sens_ppv(y, s, thr)
            assert (b["n"], b["n_positive"], b["threshold"]) == (N, int(y.sum()), thr)
            assert b["auroc"] == pytest.approx(roc_auc_score(y, s)) and b["auprc"] == pytest.approx(average_precision_score(y, s))
            assert (b["sensitivity"], b["ppv"], b["event1"]) == pytest.approx((se, ppv, min(se, ppv)))
            assert b["brier"] == pytest.approx(np.mean((s - y) ** 2))
            assert b["auroc_ci95"] == bootstrap_ci(compute_auroc, y, s, n_resamples=50)
            assert b["auroc_ci95"] != bootstrap_ci(compute_auroc, y, s)  # the caller's number of resamples
            # every metric with its interval, on the same resamples; event-1 at the block's own fixed threshold
            assert b["auprc_ci95"] == bootstrap_ci(compute_auprc, y, s, n_resamples=50)
            assert b["brier_ci95"] == bootstrap_ci(compute_brier, y, s, n_resamples=50)
            assert b["event1_ci95"] == bootstrap_ci(lambda yy, ss: compute_event1(yy, ss, thr), y, s, n_resamples=50)
            for k in ("auprc", "brier"):
                assert b[f"{k}_ci95"][0] < b[k] < b[f"{k}_ci95"][1]
        for key, trigger in ((f"news2_{w}h", 5), (f"news2_{w}h_ge7", 7)):
            b, s = m[key], scored.news2_max[w]
            assert b["threshold"] == trigger and "brier" not in b and "brier_ci95" not in b  # NEWS2 is no probability
            assert b["event1"] == pytest.approx(min(_sens_ppv(y, s, trigger)))
            assert b["event1_ci95"] == bootstrap_ci(lambda yy, ss: compute_event1(yy, ss, trigger), y, s, n_resamples=50)
    ok = ~np.isnan(scored.saps1)
    b = m["saps1"]
    assert (b["n"], b["threshold"]) == (int(ok.sum()), 17.0) and "brier" not in b
    assert b["event1"] == pytest.approx(min(_sens_ppv(y[ok], scored.saps1[ok], 17.0)))


def test_alert_blocks_are_the_models_news2_at_both_triggers_and_either():
    scored, meta = _scored()
    scored.risk[0, :] = 0.0
    scored.risk[0, 3] = 0.55  # exactly at the model's threshold, with NEWS2 low: an alert of the model alone
    scored.news2_hourly[0, :] = 0
    m = metrics_for(scored, meta, n_boot=20)
    y, surv = scored.labels, scored.survival_days
    assert m["alerts"] == alert_summary(scored.risk, y, 0.55, surv)
    for t in (5, 7):
        assert m[f"alerts_news2_{t}"] == alert_summary(scored.news2_hourly, y, t, surv)
    either = ((scored.risk >= 0.55) | (scored.news2_hourly >= 5)).astype(float)
    combined = dict(m["alerts_combined"])
    assert combined.pop("rule") == "model risk >= 0.550 or NEWS2 >= 5"
    assert combined == alert_summary(either, y, 1.0, surv)
    assert either[0].sum() == 1
    assert m["alerts_combined"]["deaths_alerted"] >= max(m["alerts"]["deaths_alerted"], m["alerts_news2_5"]["deaths_alerted"])


def test_an_lstm_bundle_reads_its_risk_at_the_bundles_threshold_and_saps_needs_a_value():
    scored, meta = _scored(components=False)
    meta = {"threshold": {"value": 0.42}}  # no component thresholds, no comparators
    scored.saps1[:] = np.nan
    m = metrics_for(scored, meta, n_boot=20)
    assert {k for k in m if k.endswith(("_24h", "_48h")) and not k.startswith(("news2", "calibration"))} == {"lstm_24h", "lstm_48h"}
    assert m["lstm_48h"]["threshold"] == 0.42
    assert m["lstm_48h"]["auroc"] == pytest.approx(roc_auc_score(scored.labels, scored.risk[:, -1]))
    assert "saps1" not in m


def test_dropped_readings_are_summed_over_records_and_the_commonest_20_reasons_kept():
    reasons = [{f"reason {i}": i + 1 for i in range(21)}, {"reason 0": 100, "reason 5": 20}]
    records = [SimpleNamespace(drop_reasons=r, n_dropped=sum(r.values())) for r in reasons]
    out = dropped_summary(records)
    assert out["n_dropped"] == sum(range(1, 22)) + 120
    top = out["dropped_by_reason"]
    assert list(top) == ["reason 0", "reason 5"] + [f"reason {i}" for i in range(20, 5, -1)] + ["reason 4", "reason 3", "reason 2"]
    assert top["reason 0"] == 101 and top["reason 5"] == 26 and "reason 1" not in top
    assert dropped_summary([]) == {"n_dropped": 0, "dropped_by_reason": {}}


def test_without_component_thresholds_comparators_or_hourly_news2_the_blocks_say_less():
    scored, _ = _scored()
    scored.news2_hourly = None  # a scorer that kept only the windows' highest NEWS2
    m = metrics_for(scored, {"threshold": {"value": 0.55}}, n_boot=20)
    assert m["ensemble_48h"]["threshold"] == 0.55
    for key in ("lstm_48h", "gbt_24h", "saps1"):  # no threshold of their own: ranking only
        assert "threshold" not in m[key] and "event1" not in m[key] and np.isfinite(m[key]["auroc"])
    assert "alerts" in m and not {"alerts_news2_5", "alerts_news2_7", "alerts_combined"} & m.keys()


def test_alert_summary_of_no_stays_and_of_no_alerted_death_is_undefined_not_an_error():
    empty = alert_summary(np.zeros((0, 48)), np.zeros(0, dtype=np.int64), 0.5)
    assert (empty["n"], empty["alert_episodes"], empty["patient_days"], empty["n_lead_time"]) == (0, 0, 0.0, 0)
    for key in ("alerts_per_patient_day", "stays_alerting", "deaths_alerted", "survivors_alerted",
                "median_first_alert_hour_deaths", "median_lead_time_h"):
        assert np.isnan(empty[key]), key
    risk = np.zeros((4, 48))
    risk[0, 10:] = 0.9  # a survivor alerts from hour 11; the two deaths never do
    a = alert_summary(risk, np.array([0, 0, 1, 1]), 0.5, np.array([np.nan, np.nan, 3.0, 9.0]))
    assert (a["alert_episodes"], a["deaths_alerted"], a["survivors_alerted"]) == (1, 0.0, 0.5)
    assert np.isnan(a["median_first_alert_hour_deaths"]) and np.isnan(a["median_lead_time_h"]) and a["n_lead_time"] == 0


def test_scoring_keeps_a_score_of_0_and_a_death_on_day_0_and_drops_only_the_unknowns(settings, record_writer):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    grids = [to_grid(read_record(record_writer(rid, [("00:30", "HR", 80 + rid), ("05:00", "RespRate", 25)])))
             for rid in (41, 42, 43, 44)]
    outcomes = {41: {"In-hospital_death": 1, "SAPS-I": 0, "Survival": 0},  # SAPS-I 0 and death on day 0: known
                42: {"In-hospital_death": 0, "SAPS-I": -1, "Survival": -1},  # -1: unknown / survived
                43: {"In-hospital_death": 1, "SAPS-I": 14, "Survival": 3}}  # 44 has no outcome: not scored
    s = score_grids(bundle, grids, outcomes)
    assert s.record_ids == [41, 42, 43] and s.labels.tolist() == [1, 0, 1]
    assert s.saps1[0] == 0 and np.isnan(s.saps1[1]) and s.saps1[2] == 14
    assert s.survival_days[0] == 0 and np.isnan(s.survival_days[1]) and s.survival_days[2] == 3
    assert np.array_equal(s.risk, bundle.risk(grids[:3]))
    assert np.array_equal(s.news2_hourly, np.array([news2_grid(g).total for g in grids[:3]]))
    assert np.array_equal(s.news2_max[24], s.news2_hourly[:, :24].max(axis=1))
