"""The review page's study list and banner: what each upload is, its status and the model's call.

Plain functions over ``review.Study`` rows, so the page only lays them out. Status:

* ``failed``: the file could not be analysed (its problem is in the ``problem`` column);
* ``out of scope``: the OOD check says the film is unlike what the model was trained on, so the
  page shows no call for it (issue 10);
* ``flagged``: the reviewer disagreed or was uncertain; ``reviewed``: the reviewer agreed;
* ``new``: no decision yet in this session.
"""
from __future__ import annotations

import pandas as pd

from cxr_model.imaging.dicom_header import HeaderField
from cxr_model.review_store import site_profile_text
from cxr_model.imaging.review import Study

#: DICOM keywords of the study banner, in the order shown (PS3.3 patient, study and series modules).
BANNER = {"Modality": "modality", "ViewPosition": "view", "BodyPartExamined": "body part", "PatientAge": "age",
          "PatientSex": "sex", "StudyDate": "study date"}
NO_VALUE = "—"


def out_of_scope(study: Study) -> bool:
    """True when the OOD check flags the film: the page then shows no call and no decision form."""
    return bool(study.ood_flag) and study.error is None


def status(study: Study, decision: str | None) -> str:
    """The worklist status of one study (see the module docstring); ``decision`` is this session's last."""
    if study.error:
        return "failed"
    if out_of_scope(study):
        return "out of scope"
    if decision in ("disagree", "uncertain"):
        return "flagged"
    return "reviewed" if decision == "agree" else "new"


def model_call(study: Study) -> str:
    """The call as the worklist shows it: the label, never one for a failed or out-of-scope film."""
    if study.error:
        return NO_VALUE
    return "none (outside the model's scope)" if out_of_scope(study) else (study.label or NO_VALUE)


def worklist(studies: list[Study], labels: list[str], decisions: dict[str, str], show_phi: bool) -> pd.DataFrame:
    """One row per upload: study, (file), status, call, P(pneumonia) as text, OOD, problem.

    P(pneumonia) is text with 3 decimals and ``"—"`` when there is none (a number column would show
    a raw ``None`` for a failed file).
    """
    rows = []
    for s, label in zip(studies, labels):
        ood = "" if s.error or s.ood_flag is None else "ok" if not s.ood_flag else \
            "unlike training" if not s.scope_reason or s.scope_reason.startswith("unlike") else s.scope_reason.split(" (")[0]
        p = NO_VALUE if s.error or s.probability is None or out_of_scope(s) else f"{s.probability:.3f}"
        rows.append({"study": label, **({"file": s.name} if show_phi else {}),
                     "status": status(s, decisions.get(s.sha256)), "model's call": model_call(s),
                     "P(pneumonia)": p, "OOD": ood, "problem": (s.error if show_phi else s.problem) or ""})
    return pd.DataFrame(rows)


def banner(rows: list[HeaderField] | None) -> str:
    """``"modality DX · view PA · age •••• · ..."`` from the header rows (masked rows stay masked)."""
    if rows is None:
        return "No DICOM header (PNG/JPEG): modality, view, age, sex and study date are not known."
    by_keyword = {r.keyword: r.value for r in rows}
    return " · ".join(f"{name} {by_keyword.get(k) or NO_VALUE}" for k, name in BANNER.items())


def past_decisions_frame(df: pd.DataFrame, mine: list[int], labels_by_sha: dict[str, str]) -> pd.DataFrame:
    """The decision store's rows with the reviewer's own first and the decision up front.

    Columns: yours, decision, study (this upload's label where the image is in it), then the rest;
    the stored site profile and its SHA-256 become one ``site profile`` column in words
    (``review_store.site_profile_text``: a name, the bundled model, or not recorded).
    """
    out = df.copy()
    out.insert(0, "yours", out["id"].isin(mine))
    out.insert(1, "study", out["image_sha256"].map(labels_by_sha).fillna(""))
    if "site_profile" in out:
        sha = out.pop("site_profile_sha256") if "site_profile_sha256" in out else [None] * len(out)
        out["site profile"] = [site_profile_text(n, h) for n, h in zip(out.pop("site_profile"), sha)]
    first = [c for c in ("yours", "decision", "study", "reviewer", "created_at", "probability", "site profile",
                         "cam_method", "note") if c in out]
    out = out[first + [c for c in out.columns if c not in first]]
    return out.sort_values("yours", ascending=False, kind="stable").reset_index(drop=True)
