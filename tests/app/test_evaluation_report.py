"""AppTest of the evaluation report page: open a saved run (picked from CXR_RUNS_DIR), move the threshold."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cxr_model.settings import PROJECT_ROOT
from cxr_model.vitals.splits import read_split
from dashboard.text import unescape
from tests.conftest import models_with_small_test_split
from tests.imaging.report.runfolder import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, kermany_dir, cxr_bundle):
    return make_run(tmp_path_factory.mktemp("eval-runs") / "run", kermany_dir, cxr_bundle, per_group=4)


@pytest.fixture(autouse=True)
def runs_folder(run_dir, monkeypatch):
    """The page lists the runs of CXR_RUNS_DIR: the one made above (and what a test scores)."""
    monkeypatch.setenv("CXR_RUNS_DIR", str(run_dir.parent))
    return run_dir.parent


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
    assert "run" in at.selectbox(key="eval_run").options
    at.selectbox(key="eval_run").set_value("run").run()
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


def test_a_run_with_a_broken_predictions_csv_says_so_without_server_paths(runs_folder):
    broken = runs_folder / "broken-run"
    broken.mkdir(exist_ok=True)
    (broken / "predictions.csv").write_text("path,probability\na.png,0.5\n")  # no label column
    try:
        at = _page()
        at.selectbox(key="eval_run").set_value("broken-run").run()
        assert not at.exception
        shown = [unescape(e.value) for e in at.error]
        assert any("missing column(s) label" in m for m in shown)
        assert not any(str(runs_folder) in m for m in shown)  # the run is named, not the server's folders
    finally:
        (broken / "predictions.csv").unlink()
        broken.rmdir()


def test_an_incomplete_run_is_not_shown_as_a_result(tmp_path, monkeypatch):
    """A run killed at 128 of 300 files keeps its partial predictions; the page must not present them."""
    monkeypatch.setenv("CXR_RUNS_DIR", str(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame({"path": [f"x{i}.jpeg" for i in range(128)], "label": [i % 2 for i in range(128)],
                  "probability": 0.7}).to_csv(run / "predictions.csv", index=False)
    (run / "INCOMPLETE").write_text("interrupted by SIGTERM after 128 of 300 files at 2026-12-01 10:00:00 UTC\n")
    at = _page()
    at.selectbox(key="eval_run").set_value("run").run()
    assert not at.exception
    assert any("incomplete run (interrupted by SIGTERM after 128 of 300 files" in unescape(e.value) for e in at.error)
    assert "Sensitivity" not in _metrics(at) and not at.slider  # no numbers of a partial run


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
        assert any(f"evaluations/{out.name}" in unescape(s.value) for s in at.success)
        assert {"Sensitivity", "Specificity"} <= set(_metrics(at))
        at.radio(key="eval_source").set_value("Open a saved run folder").run()  # the new run is offered
        assert f"evaluations/{out.name}" in at.selectbox(key="eval_run").options
    finally:
        shutil.rmtree(out, ignore_errors=True)  # runs/ is git-ignored; leave nothing behind anyway


def test_the_models_own_held_out_test_split_is_offered_first_and_scored_as_a_test(tmp_path, settings, monkeypatch):
    """The honest set is one click away: the installed model's own test films (here cut to 2 per class and
    population, tests/conftest.py), named with their counts, scored and reported as that split."""
    (tmp_path / "models").mkdir()
    models_with_small_test_split(tmp_path / "models", settings)
    monkeypatch.setenv("CXR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CXR_RUNS_DIR", str(tmp_path / "runs"))
    at = _page()
    assert at.radio(key="eval_source").value == "Score a labelled set"  # no saved run yet: scoring comes first
    options = at.selectbox(key="eval_dataset").options
    model = json.loads((settings.cxr_model_dir / "metadata.json").read_text())
    name = f"{model['name']}@{model['version']}"
    assert options[0] == f"Own held-out test split of {name} (8 films: 4 children, 4 adults)"
    assert options[1].startswith(f"Own validation split of {name} (") and "children" in options[1]
    assert any(o.startswith("Kermany val") for o in options[2:])
    at.selectbox(key="eval_dataset").set_value(options[0])
    at.button(key="eval_start").click().run()
    assert not at.exception and not at.error
    out = Path(at.session_state["eval_last_run"])
    assert out.parent == tmp_path / "runs" / "evaluations" and out.name.startswith("own-test-")
    assert len(pd.read_csv(out / "predictions.csv")) == 8
    assert any(unescape(s.value) == f"{name} on own held-out test split (the model's splits.csv)" for s in at.subheader)
    assert not any("not a test" in unescape(s.value) for s in at.subheader)
    assert any(unescape(w.value).startswith("This set mixes populations (child 4, adult 4)") for w in at.warning)
    assert "By population in the data set (threshold" in " ".join(unescape(m.value) for m in at.markdown)


def test_vitals_tab_compares_the_model_with_news2_at_its_triggers_and_saps(settings):
    # the vitals model is bundled in the repository: its absence is a failure, never a skip
    assert (settings.vitals_model_dir / "metadata.json").exists(), f"{settings.vitals_model_dir}: no vitals bundle"
    at = _page()
    assert [t.label for t in at.tabs] == ["Chest X-ray model", "Ward vitals model"]
    tables = [df.value for df in at.dataframe if "model / window" in df.value.columns]
    assert len(tables) == 2  # validation, then held-out test
    groups = " ".join(tables[0]["model / window"])
    assert "LSTM" in groups and "NEWS2 ≥ 5" in groups and "NEWS2 ≥ 7" in groups and "SAPS-I" in groups
    assert "_" not in groups  # human labels, not metric keys
    news2 = tables[1][tables[1]["model / window"].str.startswith("NEWS2")]
    assert set(news2["alert threshold"]) == {"5", "7"}  # a score's trigger reads as the score, not "5.000"
    saps = tables[1][tables[1]["model / window"].str.startswith("SAPS-I")]["alert threshold"].iloc[0]
    assert saps.isdigit()
    # the held-out run gives each metric with its interval; validation (out-of-fold choices) has none
    test = json.loads((settings.vitals_model_dir / "test_evaluation" / "metrics.json").read_text())["ensemble_48h"]
    row = tables[1][tables[1]["model / window"] == "LSTM + GBT ensemble, risk at 48 h"].iloc[0]
    for k, col in (("auprc", "AUPRC"), ("event1", "event-1"), ("brier", "Brier")):
        lo, hi = test[f"{k}_ci95"]
        assert row[f"{col} 95% CI"] == f"{lo:.3f}-{hi:.3f}"
    assert set(tables[0]["event-1 95% CI"]) == {"-"}
    assert any("Validation stays" in m.value for m in at.markdown)
    meta = json.loads((settings.vitals_model_dir / "metadata.json").read_text())
    if meta.get("validation_kind"):  # choices made on cross-validated predictions are labelled as such
        assert any(meta["validation_kind"] in m.value for m in at.markdown)
        assert any(f"cross-validated n = {meta['validation']['ensemble_48h']['n']}" in c.value for c in at.caption)
    assert any(s.value.startswith("Held-out test stays") for s in at.subheader)
    # held-out test stays, with the alert burden and lead time at the alert threshold
    labels = [m.label for m in at.metric]
    assert {"Alerts per patient-day", "Deaths alerted", "Median lead time (h)"} <= set(labels)
    burden = float(next(m.value for m in at.metric if m.label == "Alerts per patient-day"))
    assert 0 < burden < 5
    test_alerts = json.loads((settings.vitals_model_dir / "test_evaluation" / "metrics.json").read_text())["alerts"]
    lead = test_alerts["median_lead_time_h"]
    assert next(m.value for m in at.metric if m.label == "Median lead time (h)") == f"{lead:.0f} ({lead / 24:.1f} days)"
    assert any(c.value.startswith("An alert is an episode") for c in at.caption)


def test_a_set_holding_training_files_is_flagged_not_a_test(runs_folder, kermany_dir, cxr_bundle):
    """Films of the model's own training split (by sha256): a warning on top, and the set is not called a test."""
    import csv

    from cxr_model.imaging.evaluate import run_evaluation

    with open(cxr_bundle.path / "splits.csv", newline="") as fh:
        own = [r for r in csv.DictReader(fh) if r["split"] == "train"][:4]
    data = runs_folder.parent / "training-films.csv"
    data.write_text("path,label\n" + "".join(f"{kermany_dir / r['path']},{r['label']}\n" for r in own))
    seen = runs_folder / "seen-run"
    run_evaluation(data, cxr_bundle, seen, workers=0, show_bar=False)
    try:
        at = _page()
        at.selectbox(key="eval_run").set_value("seen-run").run()
        assert not at.exception
        warnings = [unescape(w.value) for w in at.warning]
        assert any("overlaps the model's training data (4 training and 0 validation files of 4)" in w
                   and "not a test result" in w for w in warnings)
        assert any("Intended use:" in unescape(i.value) for i in at.info)
        assert "not a test" in unescape(at.subheader[0].value)
    finally:
        shutil.rmtree(seen, ignore_errors=True)


def _clean_clone_models(settings, tmp_path, monkeypatch) -> Path:
    """The bundles as a clean clone has them (a vitals bundle ships aggregate metrics only: failure cases are
    rows of the data set), and an empty state folder; returns the models folder."""
    models = tmp_path / "models"
    models.mkdir()
    (models / settings.cxr_model_name).symlink_to(settings.cxr_model_dir)
    shutil.copytree(settings.vitals_model_dir, models / settings.vitals_model_name,
                    ignore=shutil.ignore_patterns("predictions.csv", "failure_cases.json"))
    monkeypatch.setenv("CXR_MODELS_DIR", str(models))
    monkeypatch.setenv("CXR_STATE_DIR", str(tmp_path / "state"))
    return models


@pytest.mark.slow
def test_vitals_tab_shows_subgroups_and_lists_failure_cases_from_the_data(settings, physionet_dir, tmp_path,
                                                                         monkeypatch):
    models = _clean_clone_models(settings, tmp_path, monkeypatch)
    at = _page()
    test = json.loads((settings.vitals_model_dir / "test_evaluation" / "metrics.json").read_text())
    reliability = at.get("plotly_chart")
    assert any('observed fraction who died in hospital' in str(c.proto) for c in reliability)
    sub = next(df.value for df in at.dataframe if "grouping" in df.value.columns)
    assert list(sub["grouping"].unique()) == ["ICU type", "age", "sex"]
    assert sub["n"].tolist() == [r["n"] for r in test["subgroups_48h"]]
    med = sub[sub["group"] == "Medical ICU"].iloc[0]
    row = next(r for r in test["subgroups_48h"] if r["group"] == "Medical ICU")
    assert med["AUROC"] == f"{row['auroc']:.3f}" and med["deaths"] == row["n_positive"]
    assert med["NEWS2 AUROC 95% CI"] == f"{row['news2_auroc_ci95'][0]:.3f}-{row['news2_auroc_ci95'][1]:.3f}"
    assert not any("record" in df.value.columns for df in at.dataframe)  # no stay listed before it is asked for
    assert "eval_vitals_download_predictions" not in {b.key for b in at.get("download_button")}
    at.button(key="eval_vitals_cases_run").click().run(timeout=180)
    assert not at.exception and not at.error
    missed = next(df.value for df in at.dataframe if "record" in df.value.columns and "days" in " ".join(df.value.columns))
    alarms = [df.value for df in at.dataframe if "record" in df.value.columns][1]
    assert len(missed) == len(alarms) == 10
    risk = missed["risk at 48 h"].astype(float)
    assert risk.is_monotonic_increasing and (alarms["risk at 48 h"].astype(float).is_monotonic_decreasing)
    assert risk.max() < alarms["risk at 48 h"].astype(float).min()
    test_ids = set(read_split(settings.vitals_model_dir / "splits.csv", "test"))
    assert {int(r) for r in missed["record"]} <= test_ids and {int(r) for r in alarms["record"]} <= test_ids
    keys = {b.key for b in at.get("download_button")}
    assert {"eval_vitals_download_MODEL_CARD", "eval_vitals_download_metrics", "eval_vitals_download_predictions"} <= keys
    cached = list((tmp_path / "state" / "vitals_failure_cases").glob("*/failure_cases.json"))
    assert len(cached) == 1 and not (models / settings.vitals_model_name / "test_evaluation" / "predictions.csv").exists()


def test_failure_cases_from_a_damaged_outcomes_file_name_it_without_a_traceback(settings, physionet_dir, tmp_path,
                                                                                 monkeypatch):
    data = tmp_path / "data"
    vitals = data / "vitals" / "physionet2012"
    vitals.mkdir(parents=True)
    (vitals / "set-a").symlink_to(physionet_dir / "set-a")
    (vitals / "Outcomes-a.txt").write_text("RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
                                           "132539,6,1,5,-1,2\n")  # a label that is neither 0 nor 1
    monkeypatch.setenv("CXR_DATA_DIR", str(data))
    _clean_clone_models(settings, tmp_path, monkeypatch)
    at = _page()
    at.button(key="eval_vitals_cases_run").click().run(timeout=120)
    assert not at.exception
    err = " ".join(unescape(e.value) for e in at.error)
    assert err == "The failure cases could not be listed: Outcomes-a.txt:2: In-hospital_death '2' is not 0 or 1"
    assert not list((tmp_path / "state").rglob("failure_cases.json"))  # nothing half-written is shown later


def test_a_units_own_labelled_stays_are_scored_in_memory_with_the_bundles_threshold(settings, physionet_dir, tmp_path,
                                                                                    monkeypatch):
    from cxr_model.vitals.bundle import load_vitals_bundle
    from cxr_model.vitals.evaluate import evaluate_records
    from cxr_model.vitals.reader import load_outcomes, read_dir

    monkeypatch.setenv("CXR_STATE_DIR", str(tmp_path / "state"))
    ids = read_split(settings.vitals_model_dir / "splits.csv", "test")[:60]
    paths = [physionet_dir / "set-a" / f"{i}.txt" for i in ids]
    outcomes = (physionet_dir / "Outcomes-a.txt").read_bytes()
    at = _page()
    # too few stays: counted, no metrics that would look like evidence
    at.file_uploader(key="eval_vitals_local_records").set_value([(p.name, p.read_bytes(), "text/plain") for p in paths[:5]])
    at.file_uploader(key="eval_vitals_local_outcomes").set_value(("Outcomes-a.txt", outcomes, "text/plain"))
    at.run(timeout=120)
    assert not at.exception
    assert any(i.value.startswith("5 labelled stays scored") for i in at.info)
    assert not any(s.value.startswith("Your stays") for s in at.subheader)
    # 60 held-out stays and a file that is not a record: the bad file named, the stays scored
    files = [(p.name, p.read_bytes(), "text/plain") for p in paths] + [("notes.txt", b"not a record\n", "text/plain")]
    at.file_uploader(key="eval_vitals_local_records").set_value(files)
    at.run(timeout=180)
    assert not at.exception and not at.error
    assert [unescape(w.value) for w in at.warning] == ["Stay left out: notes.txt:1: header is not 'Time,Parameter,Value'"]
    assert any(s.value.startswith("Your stays (n = 60, ") for s in at.subheader)
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    records, errors = read_dir(physionet_dir / "set-a", ids)
    want, _ = evaluate_records(bundle, records, errors, load_outcomes(physionet_dir / "Outcomes-a.txt"), "x", "x", "x")
    table = [df.value for df in at.dataframe if "model / window" in df.value.columns][-1]
    row = table[table["model / window"] == "LSTM + GBT ensemble, risk at 48 h"].iloc[0]
    assert row["AUROC"] == f"{want['ensemble_48h']['auroc']:.3f}" and row["n"] == "60"
    assert row["alert threshold"] == f"{bundle.threshold:.3f}"  # the bundle's, never refitted on these stays
    assert {"eval_vitals_local_metrics", "eval_vitals_local_predictions"} <= {b.key for b in at.get("download_button")}
    assert not list((tmp_path / "state").rglob("*.csv")) and not list((tmp_path / "state").rglob("metrics.json"))
    # stays the model was trained on are counted and flagged: metrics on them are no validation
    train = read_split(settings.vitals_model_dir / "splits.csv", "train")[:30]
    at.file_uploader(key="eval_vitals_local_records").set_value(
        [(f"{i}.txt", (physionet_dir / "set-a" / f"{i}.txt").read_bytes(), "text/plain") for i in [*ids[:20], *train]])
    at.run(timeout=180)
    assert not at.exception
    assert [w.value for w in at.warning] == ["30 of these 50 stays were used to train or tune this model (its splits.csv): "
                                             "on them the metrics are optimistic, not a validation."]
    # a folder of bad files: five warnings, the rest listed once as plain text, past the 50 that metrics.json keeps
    junk = [(f"[x](https://evil.example){i:02d}.txt", b"junk\n", "text/plain") for i in range(55)]
    at.file_uploader(key="eval_vitals_local_records").set_value(files[:20] + junk)
    at.run(timeout=180)
    assert not at.exception
    assert len(at.warning) == 5 and at.warning[0].value.startswith("Stay left out: \\[x\\]\\(https")
    more = next(e for e in at.expander if e.label.endswith("more stays left out"))
    assert more.label == "50 more stays left out"
    lines = more.text[0].value.splitlines()
    assert len(lines) == 46 and lines[0].startswith("[x](https://evil.example)05.txt:1: header is not")
    assert lines[-1] == "... and 5 more"
    # a damaged outcomes file is refused whole, named with its line
    at.file_uploader(key="eval_vitals_local_outcomes").set_value(
        ("labels.csv", b"RecordID,In-hospital_death\n132539,yes\n", "text/csv"))
    at.run(timeout=120)
    assert not at.exception
    assert [unescape(e.value) for e in at.error] == ["Not scored: labels.csv:2: non-numeric field in '132539,yes'"]
