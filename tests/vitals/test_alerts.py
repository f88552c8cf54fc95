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
