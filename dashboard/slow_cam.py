"""The X-ray review page's panel for a slow CAM method (ScoreCAM) running in the background.

While the job runs, the page shows the study's Grad-CAM map (labelled as such) and this panel: a
progress bar in forward passes, and "Cancel". A fragment polls the job every second, reruns the
whole page when the map is ready, and stops polling once the job has ended.
"""
from __future__ import annotations

import streamlit as st

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.explain import forward_passes
from cxr_model.imaging.ood import OodModel
from cxr_model.imaging.review import Study, analyse_study
from dashboard import jobs
from dashboard.text import plain


def _start(key, bundle: CxrBundle, data: bytes, name: str, method: str, ood: OodModel | None) -> jobs.Job:
    return jobs.start(key, forward_passes(bundle, method),
                      lambda tick: analyse_study(bundle, data, name, method, ood, on_forward=tick))


def slow_study(base: Study, data: bytes, method: str, bundle: CxrBundle, ood: OodModel | None) -> tuple[Study, str]:
    """The study under ``method`` when its job is done, else ``base`` (the default map) with the job's panel.

    Returns:
        ``(study, the method of the map it holds)``.
    """
    # a site's map is its own, and a profile made again under the same name is another model
    key = (base.sha256, method) + ((base.site_profile, base.site_profile_sha256) if base.site_profile else ())
    job = jobs.get(key) or _start(key, bundle, data, base.name, method, ood)
    if job.future.done() and not job.cancelled and job.future.exception() is None:
        return job.future.result(), method
    running = not job.future.done()
    st.fragment(_panel, run_every=1.0 if running else None)(key, method, base.method, (bundle, data, base.name, ood))
    return base, base.method


def _panel(key, method: str, shown: str, start_args) -> None:
    job = jobs.get(key)
    if job is None:
        return
    if job.future.done() and not job.cancelled and job.future.exception() is None:
        st.rerun(scope="app")  # the map is ready: draw the page with it
    if job.cancelled:
        st.info(f"{method} was cancelled; the {shown} map is shown.")
        st.button(f"Run {method} again", key="slow_restart", on_click=_start, args=(key, *start_args[:2],
                  start_args[2], method, start_args[3]))
    elif job.future.done():
        st.error(plain(f"{method} failed ({type(job.future.exception()).__name__}); the {shown} map is shown."))
    else:
        st.progress(job.fraction, text=f"{method} running in the background: {job.done} of {job.total} forward "
                                       f"passes. The {shown} map is shown meanwhile.")
        st.button(f"Cancel {method}", key="slow_cancel", on_click=job.cancel.set)
