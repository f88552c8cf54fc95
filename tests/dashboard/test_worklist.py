"""Worklist rows and the study banner, from Study values built here (no model needed)."""
from __future__ import annotations

import pandas as pd

from cxr_model.imaging.dicom_header import HeaderField
from cxr_model.imaging.review import Study
from dashboard.worklist import banner, past_decisions_frame, status, worklist


def _ok(sha: str, flag: bool = False) -> Study:
    return Study("a.png", sha, probability=0.8123, label="PNEUMONIA", ood_score=30.0 if flag else 5.0,
                 ood_threshold=28.0, ood_flag=flag)


def test_status_and_call_per_study():
    bad = Study("b.png", "s2", error="b.png: not an image", problem="not an image")
    rows = worklist([_ok("s1"), bad, _ok("s3", flag=True), _ok("s4")], ["S1", "S2", "S3", "S4"],
                    {"s1": "agree", "s4": "uncertain", "s3": "agree"}, show_phi=False)
    assert list(rows["status"]) == ["reviewed", "failed", "out of scope", "flagged"]
    assert list(rows["model's call"]) == ["PNEUMONIA", "—", "none (outside the model's scope)", "PNEUMONIA"]
    assert list(rows["P(pneumonia)"]) == ["0.812", "—", "—", "0.812"]  # text: never a raw None
    assert "file" not in rows and list(rows["problem"]) == ["", "not an image", "", ""]
    assert status(_ok("s5"), None) == "new"


def test_banner_keeps_masked_fields_masked():
    rows = [HeaderField("(0008,0060)", "Modality", "Modality", "DX", False),
            HeaderField("(0010,1010)", "PatientAge", "Patient's Age", "••••", True)]
    text = banner(rows)
    assert text.startswith("modality DX") and "age ••••" in text and "study date —" in text
    assert banner(None).startswith("No DICOM header")


def test_past_decisions_put_the_reviewers_own_rows_first_with_the_decision_up_front():
    df = pd.DataFrame({"id": [3, 2, 1], "created_at": [3, 2, 1], "reviewer": ["x", "me", "y"],
                       "image_sha256": ["h1", "h2", "h3"], "probability": [0.1] * 3, "cam_method": ["GradCAM"] * 3,
                       "decision": ["agree", "disagree", "uncertain"], "note": [""] * 3})
    out = past_decisions_frame(df, [2], {"h2": "Study 1 (sha h2)"})
    assert list(out.columns[:3]) == ["yours", "decision", "study"]
    assert list(out["id"]) == [2, 3, 1] and out["study"][0] == "Study 1 (sha h2)"


def test_past_decisions_say_which_site_profile_made_the_call_in_words():
    from cxr_model.review_store import NO_PROFILE, NOT_RECORDED

    df = pd.DataFrame({"id": [3, 2, 1], "created_at": [3, 2, 1], "reviewer": ["me"] * 3,
                       "image_sha256": ["h1", "h2", "h3"], "probability": [0.1] * 3, "cam_method": ["GradCAM"] * 3,
                       "decision": ["agree"] * 3, "note": [""] * 3, "site_profile": ["ward-3", "", None],
                       "site_profile_sha256": ["9c" * 32, None, None]})
    out = past_decisions_frame(df, [1, 2, 3], {})
    assert list(out["site profile"]) == ["ward-3 (profile sha256 9c9c9c9c9c9c)", NO_PROFILE, NOT_RECORDED]
    assert "site_profile" not in out and "site_profile_sha256" not in out
