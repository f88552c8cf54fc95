"""Run folders and report.html: readable errors, self-contained output, every section present.

A synthetic run folder (numbers only, generated here) covers the format; a small real run
(Kermany radiographs scored by the bundled model through ``run_evaluation``) covers the whole
path the CLI takes.
"""
import json
import re

import numpy as np
import pandas as pd
import pytest

from cxr_model.imaging.report.html import DISCLAIMER, write_report
from cxr_model.imaging.report.run import load_run
from cxr_model.imaging.runfolder import RunFolderError
from tests.imaging.report.runfolder import make_run

EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def synthetic_run(folder, n=60, errors=True):
    rng = np.random.default_rng(1)
    label = rng.integers(0, 2, n)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"path": [f"NORMAL/x{i}.jpeg" for i in range(n)], "label": label,
                  "probability": np.round(np.clip(rng.random(n) * 0.6 + 0.35 * label, 0, 1), 4),
                  "predicted": 0, "subtype": np.where(label == 0, "normal", "bacteria"),
                  "width": 224, "height": 224}).to_csv(folder / "predictions.csv", index=False)
    (folder / "metrics.json").write_text(json.dumps({"n": n, "threshold": 0.6, "model": "toy@0", "data": "/nowhere/val"}))
    if errors:
        (folder / "errors.csv").write_text("path,error\nPNEUMONIA/bad.jpeg,bad.jpeg: file is empty (0 bytes)\n")
    return folder


def test_load_run_reads_the_three_files(tmp_path):
    run = load_run(synthetic_run(tmp_path / "run"))
    assert len(run.predictions) == 60 and run.predictions["label"].dtype.kind == "i"
    assert run.threshold() == 0.6 and run.split == "nowhere/val"
    assert run.errors.to_dict("records") == [{"path": "PNEUMONIA/bad.jpeg", "error": "bad.jpeg: file is empty (0 bytes)"}]


def test_run_without_metrics_or_errors_uses_the_model_card_threshold(tmp_path):
    folder = synthetic_run(tmp_path / "run", errors=False)
    (folder / "metrics.json").unlink()
    run = load_run(folder)
    assert run.errors.empty and run.metrics == {} and run.split == "run"
    assert run.threshold({"threshold": {"value": 0.3}}) == 0.3


@pytest.mark.parametrize("setup,message", [
    (lambda d: None, "no such folder"),
    (lambda d: d.mkdir(), "no predictions.csv"),
    (lambda d: (d.mkdir(), (d / "predictions.csv").write_text("path,score\na,0.1\n")), "missing column(s) label, probability"),
    (lambda d: (d.mkdir(), (d / "predictions.csv").write_text("path,label,probability\na,2,0.1\n")), "label must be 0 or 1"),
    (lambda d: (d.mkdir(), (d / "predictions.csv").write_text("path,label,probability\na,1,high\n")), "probability a number"),
])
def test_unreadable_run_folders_give_actionable_errors(tmp_path, setup, message):
    folder = tmp_path / "run"
    setup(folder)
    with pytest.raises(RunFolderError, match=re.escape(message)):
        load_run(folder)


def test_synthetic_report_is_self_contained_and_complete(tmp_path):
    folder = synthetic_run(tmp_path / "run")
    vitals = {"n": 800, "n_errors": 0, "lstm_48h": {"auroc": 0.86, "auprc": 0.5, "event1": 0.52},
              "news2_48h": {"auroc": 0.71}, "saps1": {"auroc": 0.68}}
    out = write_report(folder, vitals_metrics=vitals, n_resamples=200)
    assert out == folder / "report.html"
    text = out.read_text()
    assert not EXTERNAL.search(text), EXTERNAL.search(text).group(0)
    assert "<script src" not in text
    assert text.count("Plotly.newPlot(") >= 5 and "plotly.js" in text.lower()  # the library itself is inline
    for div in ("roc-curve", "pr-curve", "confusion-matrix", "reliability-diagram"):
        assert f'id="{div}"' in text
    assert DISCLAIMER in text and "nowhere/val" in text
    assert "bad.jpeg: file is empty (0 bytes)" in text
    assert "image file not found" in text  # the gallery says so instead of failing
    assert "Ward vitals model" in text and "lstm_48h" in text and "saps1" in text


def test_report_without_vitals_has_no_vitals_section(tmp_path):
    text = write_report(synthetic_run(tmp_path / "run"), n_resamples=100).read_text()
    assert "Ward vitals model" not in text


# ------------------------------------------------------------------------- real radiographs
@pytest.fixture(scope="module")
def real_run(tmp_path_factory, kermany_dir, cxr_bundle):
    return make_run(tmp_path_factory.mktemp("eval") / "run", kermany_dir, cxr_bundle, per_group=4)


def test_evaluate_pipeline_report_matches_its_metrics(real_run, cxr_bundle):
    out = write_report(real_run, cxr_bundle.meta, bundle=cxr_bundle)
    text = out.read_text()
    metrics = json.loads((real_run / "metrics.json").read_text())
    assert metrics["n"] == 12 and metrics["n_errors"] == 1
    assert f"AUROC {metrics['auroc']:.3f}" in text  # the ROC title carries the same number
    assert not EXTERNAL.search(text) and 'id="roc-curve"' in text
    for group in ("bacteria", "virus", "normal"):
        assert f"<td>{group}</td>" in text
    assert "broken_bacteria_1.jpeg: corrupt or truncated image" in text
    assert f"Training data of {cxr_bundle.model_id}" in text
    n_mistakes = sum(1 for _ in re.finditer(r"<figure class='card", text))
    fn, fp = _mistakes(real_run)
    assert n_mistakes == min(6, fn) + min(6, fp)
    assert text.count("data:image/png;base64,") >= n_mistakes


def _mistakes(run_dir):
    """False negatives and false positives as the pipeline called them (predicted column)."""
    p = pd.read_csv(run_dir / "predictions.csv")
    return int(((p.label == 1) & (p.predicted == 0)).sum()), int(((p.label == 0) & (p.predicted == 1)).sum())


def test_a_run_where_every_file_failed_still_reports_the_errors(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "predictions.csv").write_text("path,label,probability,predicted,subtype\n")
    (folder / "errors.csv").write_text("path,error\na.jpeg,a.jpeg: file is empty (0 bytes)\n")
    text = write_report(folder, n_resamples=50).read_text()
    assert "a.jpeg: file is empty (0 bytes)" in text and 'id="roc-curve"' in text
    assert "n = 0" in text
