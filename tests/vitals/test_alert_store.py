"""Alert actions share the review decisions' database: who, when, which patient, which alert, what."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect

from cxr_model import audit, review_store
from cxr_model.vitals.alert_store import actions_for, record_action


def test_actions_are_stored_beside_the_review_decisions(tmp_path):
    url = f"sqlite:///{tmp_path / 'reviews.sqlite'}"
    review_store.save_decision(reviewer="Dr A", image_sha256="a" * 64, model_id="m", model_version="1",
                               probability=0.5, threshold=0.5, cam_method="gradcam", decision="agree", url=url,
                               site_profile=None)
    first = record_action(reviewer="  Nurse B ", record_id=132539, alert_id="132539-news2-high-h5",
                          alert_kind="news2-high", action="acknowledge", note="seen", url=url)
    record_action(reviewer="Dr C", record_id=132539, alert_id="132539-news2-high-h5", alert_kind="news2-high",
                  action="escalate", url=url)
    tables = set(inspect(review_store.engine_for(url)).get_table_names())
    assert {"review_decisions", "ward_alert_actions"} <= tables
    got = actions_for(["132539-news2-high-h5", "other"], url=url)
    assert [(a["action"], a["reviewer"], a["record_id"]) for a in got["132539-news2-high-h5"]] == [
        ("acknowledge", "Nurse B", 132539), ("escalate", "Dr C", 132539)]
    assert got["other"] == [] and first > 0
    assert got["132539-news2-high-h5"][0]["created_at"] is not None
    trail = audit.list_events(url)
    acted = trail[trail["action"].str.startswith("alert.")]
    assert sorted(zip(acted["actor"], acted["action"], acted["subject"])) == [
        ("Dr C", "alert.escalate", "record 132539"), ("Nurse B", "alert.acknowledge", "record 132539")]


def test_a_viewer_may_not_act_on_alerts_and_nothing_is_stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    with pytest.raises(PermissionError, match="may read but not act"):
        record_action(reviewer="Dr V", role="viewer", record_id=1, alert_id="1-model-risk-h1",
                      alert_kind="model-risk", action="acknowledge", url=url)
    assert actions_for(["1-model-risk-h1"], url=url) == {"1-model-risk-h1": []}
    assert audit.list_events(url).empty


@pytest.mark.parametrize("kwargs,message", [({"reviewer": " "}, "sign in"), ({"action": "delete"}, "action must be"),
                                            ({"note": "x" * 5000}, "at most")])
def test_bad_actions_are_refused_with_a_message(tmp_path, kwargs, message):
    args = dict(reviewer="Dr A", record_id=1, alert_id="1-model-risk-h1", alert_kind="model-risk",
                action="acknowledge", url=f"sqlite:///{tmp_path / 'r.sqlite'}")
    with pytest.raises(ValueError, match=message):
        record_action(**{**args, **kwargs})
