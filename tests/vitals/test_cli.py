"""``cxr-model vitals train|evaluate`` on a small subset of real records."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

KEYS = {"auroc", "auroc_ci95", "auprc", "event1", "brier"}


def _cli(*args, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cxr_model", "vitals", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def subset(physionet_dir, tmp_path_factory):
    """Links to 120 real records plus one malformed generated record (nothing copied)."""
    d = tmp_path_factory.mktemp("subset")
    for p in sorted((physionet_dir / "set-a").glob("*.txt"))[:120]:
        (d / p.name).symlink_to(p)
    (d / "999999.txt").write_text("Time,Parameter,Value\n00:00,RecordID,999999\n00:05,HR,fast\n")
    return d


def test_cli_train_then_evaluate_writes_metrics(subset, physionet_dir, tmp_path):
    outcomes = str(physionet_dir / "Outcomes-a.txt")
    r = _cli("train", "--records", str(subset), "--outcomes", outcomes, "--out", str(tmp_path / "m"),
             "--epochs", "2", "--hidden", "16", "--members", "2")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and (tmp_path / "m" / "model.pt").exists()
    r = _cli("evaluate", "--records", str(subset), "--outcomes", outcomes, "--model", str(tmp_path / "m"),
             "--out", str(tmp_path / "e"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n"] == 120 and m["n_errors"] == 1
    assert m["errors"] == ["999999.txt:3: value 'fast' of HR is not a number"]
    for g in ("lstm_24h", "lstm_48h"):
        assert KEYS <= m[g].keys() and m[g]["n"] == 120
    for g in ("news2_24h", "news2_48h", "saps1"):
        assert {"auroc", "auprc", "n"} <= m[g].keys()
    assert m["saps1"]["n"] <= 120
    assert m["alerts"]["n"] == 120 and m["alerts"]["threshold"] == m["lstm_48h"]["threshold"]
    assert {"ece", "slope", "intercept", "citl"} <= m["calibration_48h"].keys()
    lines = r.stdout.splitlines()
    icu = [g for g in m["subgroups_48h"] if g["grouping"] == "ICU type"]
    assert sum(g["n"] for g in icu) == 120 and len(icu) >= 2
    for g in icu:  # one printed line per group, as metrics.json has it
        assert sum(line.startswith(f"  ICU type: {g['group']} ") and f"n={g['n']:5d}" in line for line in lines) == 1
    assert "predictions.csv" in lines[-1] and (tmp_path / "e" / "failure_cases.json").exists()
    # the folder holds the stays this model was trained and tuned on: counted, and said to be no validation
    rows = [line.split(",") for line in (tmp_path / "m" / "splits.csv").read_text().splitlines()[1:]]
    fitted = sum(split.strip() in ("train", "val") for _, split in rows)
    assert 0 < fitted < 120 and m["n_seen_in_training"] == fitted
    assert (f"warning: {fitted} of these 120 stays were used to train or tune the model (its splits.csv): "
            "on them the metrics are optimistic, not a validation") in r.stderr


def test_cli_reports_a_missing_outcomes_file(subset, tmp_path):
    r = _cli("evaluate", "--records", str(subset), "--outcomes", str(tmp_path / "nope.txt"), "--out", str(tmp_path))
    assert r.returncode == 2 and "nope.txt" in r.stderr and "Traceback" not in r.stderr


def test_cli_names_an_empty_records_folder(physionet_dir, tmp_path):
    outcomes = str(physionet_dir / "Outcomes-a.txt")
    r = _cli("evaluate", "--records", str(tmp_path), "--outcomes", outcomes, "--out", str(tmp_path / "e"))
    assert r.returncode == 2 and "no <RecordID>.txt records found" in r.stderr
    r = _cli("train", "--records", str(tmp_path), "--outcomes", outcomes, "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "training needs at least 10" in r.stderr and "Traceback" not in r.stderr
