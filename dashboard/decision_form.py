"""The X-ray review page's decision form: agree / disagree / uncertain, a note, save.

Keyboard: A, D and U choose the decision (buttons with Streamlit shortcuts; the viewer forwards the
same keys when it has the focus). Saving records the method of the map that was shown and the site
profile (name and content SHA-256) that produced the call shown.
"""
from __future__ import annotations

import logging

import streamlit as st

from cxr_model import review_store
from cxr_model.access import Identity
from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.review import Study
from dashboard.text import plain

log = logging.getLogger(__name__)
SHORTCUTS = {"agree": "a", "disagree": "d", "uncertain": "u"}


def _choose(decision: str) -> None:
    st.session_state["review_decision"] = decision


def decision_form(study: Study, method: str, bundle: CxrBundle, me: Identity, decided: dict[str, str]) -> None:
    """Draw the form for the signed-in person ``me`` (read-only roles get a note instead); on save, record
    the decision in ``decided`` (the worklist's status). A failed save keeps the choice and the note."""
    st.subheader("Your decision")
    if not me.can_review:
        st.info(f"You are signed in as a {me.role}: you can read decisions but not save them.")
        return
    cols = st.columns(len(SHORTCUTS) + 3)
    for col, (decision, key) in zip(cols, SHORTCUTS.items()):
        # the button shows its key itself ("Agree  A"); a "(A)" in the label read as the key twice
        col.button(decision.capitalize(), key=f"decide_{decision}", shortcut=key, on_click=_choose, args=(decision,))
    st.radio("Do you agree with the model's call?", list(review_store.DECISIONS), index=None, horizontal=True,
             key="review_decision")
    st.text_area("Note (no patient identifiers)", key="review_note", max_chars=review_store.NOTE_MAX)
    # Saved in the button's callback, before the page is drawn, so the worklist above shows the new status.
    st.button("Save decision", key="review_save", type="primary", on_click=_save,
              args=(study, method, bundle, me, decided))
    outcome = st.session_state.pop("review_outcome", None)
    if outcome is not None:
        (st.success if outcome[0] == "ok" else st.error)(outcome[1])


def _save(study: Study, method: str, bundle: CxrBundle, me: Identity, decided: dict[str, str]) -> None:
    decision, note = st.session_state.get("review_decision"), st.session_state.get("review_note", "")
    if decision is None:
        st.session_state["review_outcome"] = ("error", "Choose agree, disagree or uncertain before saving.")
        return
    try:
        rid = review_store.save_decision(
            reviewer=me.name, role=me.role, image_sha256=study.sha256, model_id=bundle.meta["name"],
            model_version=str(bundle.meta["version"]), probability=study.probability, threshold=study.threshold,
            cam_method=method, decision=decision, note=note,
            # the profile of the call shown (the study's), not whatever the sidebar holds by now
            site_profile=study.site_profile, site_profile_sha256=study.site_profile_sha256)
    except (ValueError, PermissionError) as exc:
        st.session_state["review_outcome"] = ("error", f"Not saved: {plain(exc)}")
        return
    except Exception as exc:  # database errors: a message, never a traceback (the SQL may quote the note)
        log.exception("saving a decision failed")
        st.session_state["review_outcome"] = (
            "error", f"Not saved: the decision store failed or cannot be reached ({plain(type(exc).__name__)}; details "
                     "in the server log). Your decision and note are still in the form: press Save again later.")
        return
    decided[study.sha256] = decision
    st.session_state["review_outcome"] = ("ok", f"Decision saved as {plain(me.name)} (#{rid}).")
