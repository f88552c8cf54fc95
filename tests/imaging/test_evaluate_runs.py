"""``cxr-model evaluate`` run folders under hostile files and faults.

Every file found is accounted for (scored, or one row of errors.csv naming it); ``n_errors``
counts rows; a run where nothing could be scored writes strict JSON and fails; a rerun replaces
everything in its folder; a run killed by SIGTERM or SIGINT (a real subprocess) is left marked
incomplete, its scored rows flushed, its DataLoader workers reaped, and readers refuse it.
Images are real Kermany films (linked, never copied into the repository) and generated files.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cxr_model.cli import main
from cxr_model.files import count_rows
from cxr_model.imaging import datasets as DS, evaluate as E
from cxr_model.imaging.data import kermany_items
from cxr_model.imaging.report.html import write_report
from cxr_model.imaging.report.run import load_run
from cxr_model.imaging.runfolder import INCOMPLETE, IncompleteRunError, RunFolderError
from cxr_model.settings import PROJECT_ROOT
from tests.imaging.synthetic import dicom_bytes, phantom, png_bytes

RUN_FILES = {"predictions.csv", "errors.csv", "metrics.json", "report.html"}


def strict_json(path: Path) -> dict:
    """metrics.json parsed as strict JSON: NaN or Infinity fail the test."""
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path.name} holds {c}"))


def csv_paths(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [row["path"] for row in csv.DictReader(fh)]


def real_films(kermany_dir: Path, n: int):
    return [it for it in kermany_items(kermany_dir, "val")][:n]


def hostile_folder(root: Path, kermany_dir: Path) -> set[str]:
    """A Kaggle-layout folder of real films and every kind of file a folder can hold; returns all paths."""
    from PIL import Image

    films = real_films(kermany_dir, 16)
    for it in films[:3] + films[-3:]:
        dst = root / ("NORMAL" if it.label == 0 else "PNEUMONIA") / it.path.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(it.path)
    normal, pneu = root / "NORMAL", root / "PNEUMONIA"
    img = Image.fromarray((phantom() * 255).astype("uint8"))
    img.save(normal / "film.tif")
    img.save(normal / "film.gif")
    (pneu / "CT0001.IMA").write_bytes(dicom_bytes((phantom() * 4095).astype("uint16")))
    (pneu / "IM0002").write_bytes(dicom_bytes((phantom() * 4095).astype("uint16")))  # suffix-less DICOM
    (normal / "notes.txt").write_text("not an image\n")
    (normal / "empty.png").write_bytes(b"")
    (normal / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 64)
    (pneu / "png-named.dcm").write_bytes(png_bytes(phantom()))
    (pneu / "two\nlines.jpeg").write_bytes(b"\xff\xd8\xff\xe0garbage")  # its error message spans two lines
    (pneu / "gone.png").symlink_to(root / "no-such-file.png")  # a broken link
    (normal / "PNEUMONIA").mkdir()
    (normal / "PNEUMONIA" / "which.png").write_bytes(png_bytes(phantom()))  # inside both class folders
    (root / "README.md").write_text("# a set\n")  # outside any class folder
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def test_every_file_in_the_folder_is_in_predictions_or_errors(kermany_dir, cxr_bundle, tmp_path):
    data = tmp_path / "set"
    found = hostile_folder(data, kermany_dir)
    assert len(found) == 18
    m = E.run_evaluation(data, cxr_bundle, tmp_path / "run", batch_size=4, workers=2, show_bar=False)
    out = tmp_path / "run"
    scored, failed = csv_paths(out / "predictions.csv"), csv_paths(out / "errors.csv")
    assert set(scored) | set(failed) == found and not set(scored) & set(failed)
    assert len(scored) + len(failed) == len(found)  # each file once
    assert {p for p in found if p.endswith(".jpeg") and "\n" not in p} <= set(scored)  # the real films
    assert {"README.md", "NORMAL/PNEUMONIA/which.png", "NORMAL/notes.txt", "NORMAL/empty.png",
            "NORMAL/.DS_Store", "PNEUMONIA/two\nlines.jpeg", "PNEUMONIA/gone.png"} <= set(failed)
    errors = pd.read_csv(out / "errors.csv", dtype=str, keep_default_na=False)
    by_path = dict(zip(errors.path, errors.error))
    assert by_path["README.md"] == "README.md: no label (not inside a NORMAL/ or PNEUMONIA/ folder)"
    assert by_path["NORMAL/PNEUMONIA/which.png"].endswith("(inside both a NORMAL/ and a PNEUMONIA/ folder)")
    for path, msg in by_path.items():
        # every error names its file, on one line (a newline in a name becomes a space)
        assert msg.startswith(" ".join(Path(path).name.splitlines()) + ":") and "\n" not in msg, msg
    # n_errors counts rows, not lines: one row's path holds a newline
    assert any("\n" in p for p in by_path)
    saved = strict_json(out / "metrics.json")
    assert saved["n"] == m["n"] == len(scored) and saved["n_errors"] == m["n_errors"] == len(failed)
    assert sum(1 for _ in open(out / "errors.csv", encoding="utf-8")) - 1 > saved["n_errors"]  # lines > rows
    assert set(os.listdir(out)) == RUN_FILES  # complete: no INCOMPLETE marker


def test_an_unexpected_reader_exception_costs_one_file_not_the_run(kermany_dir, cxr_bundle, tmp_path, monkeypatch):
    films = real_films(kermany_dir, 16)[:8]
    faults = {films[1].path.name: IndexError("list index out of range"), films[4].path.name: TypeError("bad VR"),
              films[6].path.name: MemoryError()}
    real_read = DS.read_image

    def hostile_read(path, *args, **kw):
        if Path(path).name in faults:
            raise faults[Path(path).name]
        return real_read(path, *args, **kw)

    monkeypatch.setattr(DS, "read_image", hostile_read)  # forked DataLoader workers inherit it
    m = E.run_evaluation(films, cxr_bundle, tmp_path / "run", batch_size=3, workers=2, show_bar=False)
    assert m["n"] == 5 and m["n_errors"] == 3
    errors = pd.read_csv(tmp_path / "run" / "errors.csv", dtype=str, keep_default_na=False)
    assert sorted(errors.error) == sorted([
        f"{films[1].path.name}: could not be read (IndexError: list index out of range)",
        f"{films[4].path.name}: could not be read (TypeError: bad VR)",
        f"{films[6].path.name}: could not be read (MemoryError)"])


def test_a_run_where_every_file_fails_writes_strict_json_and_exits_non_zero(tmp_path, capsys):
    (tmp_path / "set" / "NORMAL").mkdir(parents=True)
    (tmp_path / "set" / "NORMAL" / "a.png").write_bytes(b"")
    (tmp_path / "set" / "NORMAL" / "b.jpeg").write_text("text, not a JPEG")
    rc = main(["evaluate", "--data", str(tmp_path / "set"), "--out", str(tmp_path / "run"), "--workers", "0"])
    err = capsys.readouterr().err
    assert rc == 1 and "none of the 2 files could be scored" in err and "Traceback" not in err
    m = strict_json(tmp_path / "run" / "metrics.json")
    assert m["n"] == 0 and m["n_errors"] == 2
    assert m["auroc"] is None and m["auroc_ci95"] == [None, None] and m["sensitivity"] is None
    assert not (tmp_path / "run" / INCOMPLETE).exists()  # finished: it is a complete (empty) result


def test_one_class_run_prints_and_saves_undefined_metrics_as_null(kermany_dir, tmp_path, capsys):
    normals = [it for it in real_films(kermany_dir, 16) if it.label == 0][:3]
    for it in normals:
        (tmp_path / "set" / "NORMAL").mkdir(parents=True, exist_ok=True)
        (tmp_path / "set" / "NORMAL" / it.path.name).symlink_to(it.path)
    rc = main(["evaluate", "--data", str(tmp_path / "set"), "--out", str(tmp_path / "run"), "--workers", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and "AUROC=n/a" in out
    m = strict_json(tmp_path / "run" / "metrics.json")
    assert m["n"] == 3 and m["auroc"] is None and m["sensitivity"] is None and m["specificity"] is not None


def test_predictions_are_on_disk_as_soon_as_each_batch_is_scored(kermany_dir, cxr_bundle, tmp_path):
    out, on_disk = tmp_path / "run", []

    def progress(done, total):  # called after each batch: what would a kill -9 leave now?
        on_disk.append((done, count_rows(out / "predictions.csv") + count_rows(out / "errors.csv")))
        assert (out / INCOMPLETE).exists() and not (out / "metrics.json").exists()

    E.run_evaluation(real_films(kermany_dir, 16)[:9], cxr_bundle, out, batch_size=2, workers=0, show_bar=False,
                     progress=progress)
    assert on_disk == [(k, k) for k in (2, 4, 6, 8, 9)]
    assert not (out / INCOMPLETE).exists()


def older_run(folder: Path, n: int = 60) -> None:
    """A complete run folder from an earlier, different evaluation (n = 60) with leftovers."""
    (folder / "shards" / "rank0").mkdir(parents=True)
    pd.DataFrame({"path": [f"NORMAL/old{i}.jpeg" for i in range(n)], "label": [i % 2 for i in range(n)],
                  "probability": 0.5}).to_csv(folder / "predictions.csv", index=False)
    (folder / "errors.csv").write_text("path,error\nold.png,old.png: file is empty (0 bytes)\n")
    (folder / "metrics.json").write_text(json.dumps({"n": n, "n_errors": 1, "auroc": 0.9, "threshold": 0.5}))
    (folder / "report.html").write_text(f"<html>old report, n = {n}</html>")
    (folder / "shards" / "rank0" / "predictions.csv").write_text("path,label,probability\n")
    (folder / ".metrics.json.tmp-1").write_text("{")
    (folder / "notes.txt").write_text("written by hand into the run folder")


def test_a_rerun_replaces_everything_from_an_older_different_run(kermany_dir, cxr_bundle, tmp_path):
    out = tmp_path / "run"
    older_run(out)
    films = real_films(kermany_dir, 16)[:4]
    m = E.run_evaluation(films, cxr_bundle, out, batch_size=2, workers=0, show_bar=False)
    assert set(os.listdir(out)) == RUN_FILES
    assert strict_json(out / "metrics.json")["n"] == m["n"] == 4 and m["n_errors"] == 0
    assert csv_paths(out / "predictions.csv") == [str(it.path) for it in films]
    assert count_rows(out / "errors.csv") == 0
    assert "old report" not in (out / "report.html").read_text()
    assert len(load_run(out).predictions) == 4


def test_an_output_folder_holding_other_files_or_the_data_is_refused_and_untouched(kermany_dir, cxr_bundle, tmp_path):
    films = real_films(kermany_dir, 16)[:2]
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.docx").write_text("months of work")
    with pytest.raises(RunFolderError, match="holds files that are not an evaluation run"):
        E.run_evaluation(films, cxr_bundle, home, workers=0, show_bar=False)
    assert os.listdir(home) == ["thesis.docx"]
    data = tmp_path / "set"
    (data / "NORMAL").mkdir(parents=True)
    (data / "NORMAL" / films[0].path.name).symlink_to(films[0].path)
    older_run(data)  # it even looks like a run folder
    with pytest.raises(RunFolderError, match="holds the data being evaluated"):
        E.run_evaluation(data, cxr_bundle, data, workers=0, show_bar=False)
    assert (data / "NORMAL" / films[0].path.name).exists() and (data / "report.html").exists()
    rc = main(["evaluate", "--data", str(data), "--out", str(data), "--workers", "0"])
    assert rc == 2


# ------------------------------------------------------------------------- a real killed process
def _children(pid: int) -> set[int]:
    kids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.add(int(d.name))
    return kids


def _new_rows(pred: Path) -> bool:
    """The new run's predictions.csv (the older run's has no ``predicted`` column) holds a row."""
    try:
        with open(pred, encoding="utf-8") as fh:
            return fh.readline().startswith("path,label,probability,predicted") and bool(fh.readline())
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return True if state != "Z" else "zombie"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_killed_run_is_marked_incomplete_with_its_rows_flushed_and_workers_reaped(kermany_dir, tmp_path, sig):
    films = kermany_items(kermany_dir, "train")[:120]
    listing = tmp_path / "set.csv"
    listing.write_text("path,label\n" + "".join(f"{it.path},{it.label}\n" for it in films))
    out = tmp_path / "run"
    older_run(out)  # a rerun into a folder that held another run
    log = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "cxr_model", "evaluate", "--data", str(listing), "--out", str(out),
                             "--workers", "2", "--batch-size", "4"], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                            stderr=log, env=dict(os.environ, OMP_NUM_THREADS="1"))
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 300  # a guard against a hung child, not a speed requirement
        while proc.poll() is None and time.monotonic() < deadline:
            if _new_rows(out / "predictions.csv"):
                workers = _children(proc.pid)
                proc.send_signal(sig)
                break
            time.sleep(0.02)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    err = log.read()
    assert len(workers) >= 2, "the DataLoader workers were running when the signal came"
    if sig == signal.SIGKILL:  # nothing runs after a kill -9: the marker written first is what remains
        assert rc == -sig
        assert "not finished" in (out / INCOMPLETE).read_text()
    else:
        assert rc == 128 + sig, err[-2000:]
        assert "marked incomplete" in err and "Traceback" not in err
        # joined and reaped by the run itself before it exited (a run that just dies leaves them running)
        assert {p: _alive(p) for p in workers} == {p: False for p in workers}
        assert f"interrupted by {sig.name}" in (out / INCOMPLETE).read_text()
    # nothing of the older run is left, nothing presents itself as complete
    assert set(os.listdir(out)) == {INCOMPLETE, "predictions.csv", "errors.csv"}
    pred = pd.read_csv(out / "predictions.csv")
    assert 1 <= len(pred) < 120 and pred.probability.between(0, 1).all() and pred.path.is_unique
    assert set(pred.path) <= {str(it.path) for it in films}
    with pytest.raises(IncompleteRunError, match="incomplete run"):
        load_run(out)
    with pytest.raises(IncompleteRunError):
        write_report(out)
    assert not (out / "report.html").exists()
