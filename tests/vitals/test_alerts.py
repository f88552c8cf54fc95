"""Alert burden and lead time at the alert threshold, on a hand-computed ward."""
import math

import numpy as np

from cxr_model.vitals.evaluate import alert_summary


def test_alert_episodes_shares_and_lead_time_by_hand():
    risk = np.array([[0.1, 0.5, 0.6, 0.2, 0.7, 0.1],   # death: alerts at hours 2 and 5 (2 episodes)
                     [0.1] * 6,                          # survivor: never
                     [0.6] * 6])                         # death: alert from hour 1, time of death unknown
    s = alert_summary(risk, np.array([1, 0, 1]), 0.5, np.array([2.0, np.nan, np.nan]))
    assert s["alert_episodes"] == 3 and s["patient_days"] == 0.75
    assert s["alerts_per_patient_day"] == 4.0
    assert s["stays_alerting"] == 2 / 3 and s["deaths_alerted"] == 1.0 and s["survivors_alerted"] == 0.0
    assert s["median_first_alert_hour_deaths"] == 1.5
    assert s["median_lead_time_h"] == 48 - 2 and s["n_lead_time"] == 1  # died on day 2, first alert at hour 2


def test_no_alerts_gives_zero_burden_and_no_lead_time():
    s = alert_summary(np.zeros((2, 48)), np.array([1, 0]), 0.3, np.array([3.0, np.nan]))
    assert s["alerts_per_patient_day"] == 0 and s["deaths_alerted"] == 0.0
    assert math.isnan(s["median_lead_time_h"]) and s["n_lead_time"] == 0


# --- ward alerts: NEWS2 triggers or the model threshold, each labelled with its source ----------

from cxr_model.vitals.alerts import model_alerts, news2_alerts, sort_alerts, status_of, still_triggering  # noqa: E402


def test_news2_alerts_on_each_rise_to_a_trigger_level():
    levels = ["low", "low-medium", "low-medium", "medium", "high", "medium", "low", "high"]
    totals = [2, 3, 4, 5, 7, 6, 1, 8]
    alerts = news2_alerts(11, "Bed 01", levels, totals, step=7)
    assert [(a.kind, a.hour) for a in alerts] == [("news2-low-medium", 2), ("news2-medium", 4), ("news2-high", 5),
                                                  ("news2-high", 8)]
    assert all(a.source == "NEWS2" for a in alerts) and [a.active for a in alerts] == [False, False, False, True]
    assert alerts[-1].text.startswith("NEWS2 8: response level high")
    assert news2_alerts(11, "Bed 01", levels, totals, step=6)[-1].active is False  # back to low at hour 7


def test_a_news2_of_7_alerts_even_when_the_model_is_quiet():
    levels, totals = ["low"] * 3 + ["high"], [0, 0, 0, 7]
    a = news2_alerts(9, "Bed 09", levels, totals, 3) + model_alerts(9, "Bed 09", [0.01] * 4, 0.3, 3)
    assert [(x.source, x.kind, x.active) for x in a] == [("NEWS2", "news2-high", True)]


def test_model_alerts_on_each_upward_crossing():
    a = model_alerts(5, "Bed 02", [0.1, 0.4, 0.5, 0.2, 0.31], 0.3, step=4)
    assert [(x.hour, x.active, x.source) for x in a] == [(2, False, "Model"), (5, True, "Model")]
    assert a[0].alert_id == "5-model-risk-h2"


def test_unacknowledged_alerts_sort_first_then_active_then_severity():
    a = news2_alerts(1, "Bed 01", ["high"], [7], 0) + model_alerts(2, "Bed 02", [0.9], 0.3, 0) \
        + news2_alerts(3, "Bed 03", ["medium", "low"], [5, 0], 1)
    order = sort_alerts(a, acknowledged={"1-news2-high-h1"})
    assert [x.alert_id for x in order] == ["2-model-risk-h1", "3-news2-medium-h1", "1-news2-high-h1"]
    assert status_of([]) == "new" and status_of([{"action": "acknowledge"}]) == "acknowledged"
    assert status_of([{"action": "acknowledge"}, {"action": "escalate"}]) == "escalated"


def test_a_risk_exactly_at_the_threshold_alerts_and_later_hours_are_not_seen_yet():
    risk = [0.1, 0.7, 0.1, 0.1, 0.9]
    (a,) = model_alerts(7, "Bed 07", risk, 0.7, step=3)  # hour 5's crossing lies after the hour asked about
    assert (a.alert_id, a.record_id, a.bed, a.kind, a.source, a.hour, a.active, a.severity) == \
        ("7-model-risk-h2", 7, "Bed 07", "model-risk", "Model", 2, False, 2)
    assert a.text == "Model risk 70% crossed the alert threshold 70%"
    assert [x.hour for x in model_alerts(7, "Bed 07", risk, 0.7, step=4)] == [2, 5]


def test_low_medium_from_the_first_hour_alerts_and_stays_active_while_it_holds():
    (a,) = news2_alerts(4, "Bed 04", ["low-medium", "low-medium"], [3, 3], step=1)
    assert (a.alert_id, a.record_id, a.bed, a.kind, a.hour, a.active, a.severity) == \
        ("4-news2-low-medium-h1", 4, "Bed 04", "news2-low-medium", 1, True, 1)
    assert a.text == "NEWS2 3: response level low-medium (a 3 in one parameter)"


def test_among_open_alerts_higher_severity_then_the_newest_come_first():
    a = news2_alerts(1, "Bed 01", ["low-medium"], [3], 0) + news2_alerts(2, "Bed 02", ["high"], [7], 0) \
        + news2_alerts(3, "Bed 03", ["low", "low", "high"], [0, 0, 8], 2) + model_alerts(4, "Bed 04", [0.5], 0.3, 0)
    assert [x.alert_id for x in sort_alerts(a, acknowledged=set())] == \
        ["3-news2-high-h3", "2-news2-high-h1", "4-model-risk-h1", "1-news2-low-medium-h1"]


def test_an_open_news2_alert_says_where_the_score_is_now():
    levels = ["low", "high", "medium", "high", "low-medium"]
    totals = [1, 7, 5, 8, 3]
    (high,) = news2_alerts(3, "Bed 03", levels, totals, step=2)  # raised at high (hour 2), medium at hour 3
    assert still_triggering(high, "medium") == "yes, now medium"
    assert still_triggering(high, "high") == "yes"
    back_up = news2_alerts(3, "Bed 03", levels, totals, step=4)[-1]  # high again at hour 4, low-medium at 5
    assert still_triggering(back_up, "low-medium") == "yes, now low-medium"
    assert still_triggering(news2_alerts(3, "Bed 03", ["high", "low"], [7, 0], step=1)[0], "low") == "no"
    (model,) = model_alerts(3, "Bed 03", [0.1, 0.5, 0.6], 0.4, step=2)
    assert still_triggering(model, "medium") == "yes"  # the model's alert is not a NEWS2 level
    (ended,) = model_alerts(3, "Bed 03", [0.5, 0.1], 0.4, step=1)
    assert still_triggering(ended, "high") == "no"
