"""AppTest of the evaluation report page: open a saved run folder, move the threshold."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cxr_model.settings import PROJECT_ROOT
from tests.evaluation.runfolder import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, kermany_dir, cxr_bundle):
    return make_run(tmp_path_factory.mktemp("eval-page") / "run", kermany_dir, cxr_bundle, per_group=4)


def _page() -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/evaluation_report.py")
    at.run()
    assert not at.exception
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_saved_run_threshold_slider_updates_sensitivity_and_specificity(run_dir):
    at = _page()
    at.radio(key="eval_source").set_value("Open a saved run folder")
    at.text_input(key="eval_run_dir").input(str(run_dir)).run()
    assert not at.exception and not at.error
    saved = json.loads((run_dir / "metrics.json").read_text())
    shown = _metrics(at)
    assert shown["Sensitivity"] == f"{saved['sensitivity']:.3f}"  # the run's own operating point
    assert shown["Specificity"] == f"{saved['specificity']:.3f}"
    assert at.slider(key="eval_threshold").value == pytest.approx(saved["threshold"])
    assert len(at.get("image")) >= 1  # the failure gallery's thumbnails

    at.slider(key="eval_threshold").set_value(0.0).run()  # everything called pneumonia
    assert not at.exception
    assert _metrics(at)["Sensitivity"] == "1.000" and _metrics(at)["Specificity"] == "0.000"

    at.slider(key="eval_threshold").set_value(1.0).run()  # (almost) nothing called pneumonia
    assert not at.exception
    assert _metrics(at)["Specificity"] == "1.000"
    assert float(_metrics(at)["Sensitivity"]) < saved["sensitivity"]

    at.button(key="eval_threshold_reset").click().run()
    assert at.slider(key="eval_threshold").value == pytest.approx(saved["threshold"])
    assert _metrics(at)["Sensitivity"] == f"{saved['sensitivity']:.3f}"
    assert any("broken_bacteria_1.jpeg" in str(df.value) for df in at.dataframe)  # the errors table


def test_a_folder_that_is_not_a_run_says_so(tmp_path):
    at = _page()
    at.text_input(key="eval_run_dir").input(str(tmp_path)).run()
    assert not at.exception
    assert any("no predictions.csv" in e.value for e in at.error)


def test_scoring_the_kermany_val_folder_writes_a_run_and_shows_it(kermany_dir):
    at = _page()
    at.radio(key="eval_source").set_value("Score a labelled set").run()
    assert not at.exception
    val = next(o for o in at.selectbox(key="eval_dataset").options if o.startswith("Kermany val"))
    at.selectbox(key="eval_dataset").set_value(val)
    at.button(key="eval_start").click().run()
    out = Path(at.session_state["eval_last_run"])
    try:
        assert not at.exception and not at.error
        n_files = sum(1 for f in (kermany_dir / "val").rglob("*.jpeg"))
        assert len(pd.read_csv(out / "predictions.csv")) == n_files
        assert any(str(out) in s.value for s in at.success)
        assert {"Sensitivity", "Specificity"} <= set(_metrics(at))
    finally:
        shutil.rmtree(out, ignore_errors=True)  # runs/ is git-ignored; leave nothing behind anyway


def test_vitals_tab_compares_lstm_with_news2_and_saps(settings):
    # the vitals model is bundled in the repository: its absence is a failure, never a skip
    assert (settings.vitals_model_dir / "metadata.json").exists(), f"{settings.vitals_model_dir}: no vitals bundle"
    at = _page()
    assert [t.label for t in at.tabs] == ["Chest X-ray model", "Ward vitals model"]
    table = next(df.value for df in at.dataframe if "group" in df.value.columns)
    groups = " ".join(table["group"])
    assert "lstm" in groups and "news2" in groups
    # held-out test stays, with the alert burden and lead time at the alert threshold
    labels = [m.label for m in at.metric]
    assert {"Alerts per patient-day", "Deaths alerted", "Median lead time (h)"} <= set(labels)
    burden = float(next(m.value for m in at.metric if m.label == "Alerts per patient-day"))
    assert 0 < burden < 5
