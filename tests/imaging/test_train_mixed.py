"""``cxr-model train --adult-data``: a tiny two-population run writes a loadable, documented bundle."""
from __future__ import annotations

import csv
import json
from collections import defaultdict

import pytest

from cxr_model.cli import main
from cxr_model.imaging.bundle import load_cxr_bundle
from tests.conftest import _need


@pytest.fixture(scope="module")
def mixed_bundle(settings, kermany_dir, tmp_path_factory):
    nih = _need(settings.data_dir / "cxr" / "nih_adult", "NIH adult radiographs")
    out = tmp_path_factory.mktemp("v2") / "bundle"
    args = ["train", "--data", str(kermany_dir), "--adult-data", str(nih), "--init-from", str(settings.cxr_model_dir),
            "--kermany-splits", str(settings.cxr_model_dir / "splits.csv"), "--out", str(out), "--img-size", "64",
            "--epochs", "2", "--mix", "8", "--batch-size", "4", "--max-items", "12", "--site-augment", "--threads", "1",
            "--device", "cpu", "--version", "2.0.0-test"]
    assert main(args) == 0
    return out, args


def test_two_population_bundle_reports_each_population_and_loads(mixed_bundle):
    out, _ = mixed_bundle
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["populations"] == ["child", "adult"]
    for key in ("child_val", "child_test", "adult_val", "adult_test", "official_val"):
        m = meta["metrics"][key]
        assert m["n"] > 0 and "auroc_ci95" in m and "calibration_slope" in m, key
    assert meta["threshold"]["rule"].startswith("Population-balanced Youden")
    assert 0 < meta["threshold"]["value"] < 1
    assert set(meta["threshold"]["per_population_youden"]) == {"child", "adult"}
    assert len(meta["cross_source"]) == 2
    assert meta["training"]["init_from"] and len(meta["training"]["history"]) == 2
    card = (out / "MODEL_CARD.md").read_text()
    assert card.count("Decision support, not a diagnosis") == 1 and "Cross-source" in card
    bundle = load_cxr_bundle(out, device="cpu")
    assert bundle.img_size == 64 and not bundle.model.training
    assert (out / "checkpoints" / "best.pt").exists() and (out / "checkpoints" / "last.pt").exists()


def test_splits_csv_names_population_and_keeps_patients_on_one_side(mixed_bundle, settings):
    out, _ = mixed_bundle
    rows = list(csv.DictReader(open(out / "splits.csv", newline="")))
    assert {r["population"] for r in rows} == {"child", "adult"}
    bundled = {r["path"]: r["split"] for r in csv.DictReader(open(settings.cxr_model_dir / "splits.csv", newline=""))}
    assert all(bundled[r["path"]] == r["split"] for r in rows if r["population"] == "child")
    patients = {r["path"]: r["patient_id"] for r in csv.DictReader(open(settings.data_dir / "cxr" / "nih_adult" / "manifest.csv"))}
    where = defaultdict(set)
    for r in rows:
        if r["population"] == "adult":
            where[patients[r["path"]]].add(r["split"])
    assert where and all(len(v) == 1 for v in where.values())


def test_finish_only_rebuilds_the_bundle_from_the_best_checkpoint(mixed_bundle):
    out, args = mixed_bundle
    before = json.loads((out / "metadata.json").read_text())
    assert main(args + ["--finish-only"]) == 0
    after = json.loads((out / "metadata.json").read_text())
    assert after["sha256"] == before["sha256"]  # same weights: the best checkpoint, not a new run
    assert after["training"]["best_epoch"] == before["training"]["best_epoch"]
