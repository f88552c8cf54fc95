"""Saved runs offered by the evaluation page: only real run folders inside the runs folder."""
from __future__ import annotations

import os

from cxr_model.imaging.runfolder import safe_run_name, saved_runs


def _run(folder, mtime=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictions.csv").write_text("path,label,probability\na.png,1,0.9\n")
    if mtime is not None:
        os.utime(folder / "predictions.csv", (mtime, mtime))
    return folder


def test_only_named_runs_inside_the_runs_folder_are_offered(tmp_path):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    _run(runs / "eval", mtime=1_000)
    _run(runs / "evaluations" / "Kermany-val-20260101-120000", mtime=2_000)
    _run(runs / ".tmp-partial")  # hidden / temporary
    _run(runs / "bad name")  # a space
    _run(runs / "a" / "b" / "too-deep")  # three levels down
    (runs / "empty").mkdir()  # no predictions.csv
    _run(outside / "elsewhere")
    (runs / "link-out").symlink_to(outside / "elsewhere")  # a folder linking out of the runs folder
    (runs / "fake").mkdir()
    (runs / "fake" / "predictions.csv").symlink_to(outside / "elsewhere" / "predictions.csv")
    found = saved_runs(runs)
    assert list(found) == ["evaluations/Kermany-val-20260101-120000", "eval"]  # newest first
    assert all(p.is_relative_to(runs.resolve()) for p in found.values())


def test_no_runs_folder_means_no_runs(tmp_path):
    assert saved_runs(tmp_path / "missing") == {}


def test_safe_run_name():
    assert safe_run_name("Kermany val-20260101") == "Kermany-val-20260101"
    assert safe_run_name("../../etc") == "etc"
    assert safe_run_name("...") == "run"
