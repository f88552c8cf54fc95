"""The bundle's own held-out split as a labelled set: ``own_split_items``, ``cxr-model evaluate --split``.

The items are the bundled model's real ``splits.csv`` rows over the real data folder; the scoring run uses
the bundled weights with the test part of ``splits.csv`` cut to a few films (tests/conftest.py).
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from types import SimpleNamespace

import pandas as pd
import pytest

from cxr_model.cli import main
from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.report.analysis import subgroup_columns, subgroup_frame
from cxr_model.imaging.splits import OWN_SPLIT_NAMES, own_split_choices, own_split_counts, own_split_items
from tests.conftest import models_with_small_test_split


def _rows(bundle_dir, part):
    with open(bundle_dir / "splits.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["split"] == part]


def test_own_test_split_items_are_the_split_rows_with_their_manifest_columns(cxr_bundle, data_dir):
    rows = _rows(cxr_bundle.path, "test")
    items = own_split_items(cxr_bundle, data_dir, "test")
    root = {"child": data_dir / "cxr" / "kermany", "adult": data_dir / "cxr" / "nih_adult"}
    expected = {root[r.get("population") or "child"] / r["path"]: (r["label"], r.get("population") or "child")
                for r in rows}
    assert len(items) == len(rows) and {it.path for it in items} == set(expected)
    for it in items:
        label, pop = expected[it.path]
        assert it.label == (label == "PNEUMONIA") and it.extra["source_population"] == pop
        assert it.path.is_file()
        assert not {"population", "boxes_xywh", "patient_id"} & set(it.extra)  # the model's own judgement goes there
    children = [it for it in items if it.extra["source_population"] == "child"]
    adults = [it for it in items if it.extra["source_population"] == "adult"]
    assert children and adults
    # the manifests' subgroup columns: a child's subtype and patient group, an adult's sex, view and age
    assert {it.subtype for it in children if it.label == 1} == {"bacteria", "virus"}
    assert all(it.group and it.group.startswith(("person", "IM-", "NORMAL2")) for it in children)
    assert {it.extra["sex"] for it in adults} == {"F", "M"} and {it.extra["view"] for it in adults} >= {"PA", "AP"}
    assert all(int(it.extra["age"]) >= 18 and it.group.startswith("nih") and it.subtype == "" for it in adults)
    assert own_split_counts(cxr_bundle.path)["test"] == dict(Counter(it.extra["source_population"] for it in items))


def test_own_split_counts_read_every_part_and_nothing_without_a_split(cxr_bundle, tmp_path):
    counts = own_split_counts(cxr_bundle.path)
    assert set(counts) == {"train", "val", "test"}
    for part, by_pop in counts.items():
        assert sum(by_pop.values()) == len(_rows(cxr_bundle.path, part))
    assert own_split_counts(tmp_path) == {}


def test_own_split_choices_name_the_model_and_count_films_per_population(cxr_bundle, tmp_path):
    counts = own_split_counts(cxr_bundle.path)
    choices = own_split_choices(cxr_bundle.path)
    test = counts["test"]
    assert list(choices.values()) == ["test", "val"]  # the honest set first; training films are never offered
    assert list(choices)[0] == (f"Own held-out test split of {cxr_bundle.model_id} ({sum(test.values())} films: "
                                f"{test['child']} children, {test['adult']} adults)")
    (tmp_path / "splits.csv").write_text("path,label,split\na.png,NORMAL,test\n")
    assert own_split_choices(tmp_path) == {}  # no metadata.json: not a bundle


def test_a_missing_part_or_data_folder_is_named(cxr_bundle, data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"no 'holdout' part \(it has test, train, val\)"):
        own_split_items(cxr_bundle, data_dir, "holdout")
    (tmp_path / "cxr").mkdir()
    (tmp_path / "cxr" / "kermany").symlink_to(data_dir / "cxr" / "kermany")  # the adults' folder is missing
    with pytest.raises(FileNotFoundError, match=r"nih_adult: the own held-out test split of .* has \d+ adult films"):
        own_split_items(cxr_bundle, tmp_path, "test")


def test_a_children_only_split_needs_no_adult_folder(data_dir, tmp_path):
    (tmp_path / "splits.csv").write_text("path,label,split\n"  # an older bundle: no population column
                                         "train/NORMAL/IM-0115-0001.jpeg,NORMAL,test\n"
                                         "train/PNEUMONIA/person1_bacteria_1.jpeg,PNEUMONIA,test\n")
    bundle = SimpleNamespace(path=tmp_path, model_id="old@1.0.0")
    (tmp_path / "data" / "cxr").mkdir(parents=True)
    (tmp_path / "data" / "cxr" / "kermany").symlink_to(data_dir / "cxr" / "kermany")
    items = own_split_items(bundle, tmp_path / "data", "test")
    assert [(it.path.name, it.label, it.group, it.subtype, it.extra) for it in items] == [
        ("IM-0115-0001.jpeg", 0, "IM-0115", "", {"source_population": "child"}),
        ("person1_bacteria_1.jpeg", 1, "person1", "bacteria", {"source_population": "child"})]
    with pytest.raises(ValueError, match=rf"{tmp_path / 'splits.csv'}: no 'val' part \(it has test\)"):
        own_split_items(bundle, tmp_path / "data", "val")
    assert own_split_counts(tmp_path) == {"test": {"child": 2}}  # rows without a population are children
    (tmp_path / "splits.csv").write_text("path,label,split\n")
    with pytest.raises(ValueError, match=r"no 'test' part \(it has none\)"):
        own_split_items(bundle, tmp_path / "data", "test")


def test_choices_list_children_first_and_name_other_populations_as_written(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"name": "m", "version": "1.0.0"}))
    (tmp_path / "splits.csv").write_text("path,label,split,population\n"
                                         "a.png,NORMAL,test,adult\nb.png,NORMAL,test,neonate\nc.png,NORMAL,test,child\n")
    assert own_split_choices(tmp_path) == {"Own held-out test split of m@1.0.0 (3 films: 1 children, 1 adults, 1 neonate)":
                                           "test"}


def test_adult_films_the_manifest_lacks_are_kept_without_subgroup_columns(cxr_bundle, data_dir, tmp_path):
    nih = data_dir / "cxr" / "nih_adult"
    adults = [r["path"] for r in _rows(cxr_bundle.path, "test") if r.get("population") == "adult"]
    dropped = set(adults[:3])
    (tmp_path / "cxr" / "nih_adult").mkdir(parents=True)
    (tmp_path / "cxr" / "kermany").symlink_to(data_dir / "cxr" / "kermany")
    (tmp_path / "cxr" / "nih_adult" / "images").symlink_to(nih / "images")
    lines = (nih / "manifest.csv").read_text().splitlines(keepends=True)
    (tmp_path / "cxr" / "nih_adult" / "manifest.csv").write_text(
        "".join(line for line in lines if line.split(",")[0] not in dropped))
    items = [it for it in own_split_items(cxr_bundle, tmp_path, "test") if it.extra["source_population"] == "adult"]
    assert len(items) == len(adults)
    for it in items:
        lacking = it.path.relative_to(tmp_path / "cxr" / "nih_adult").as_posix() in dropped
        assert (it.group == "") == lacking and ("sex" in it.extra) == (not lacking)
    (tmp_path / "cxr" / "nih_adult" / "manifest.csv").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.csv: NIH adult manifest not found"):
        own_split_items(cxr_bundle, tmp_path, "test")


@pytest.fixture(scope="module")
def small_test_bundle(tmp_path_factory, settings):
    return models_with_small_test_split(tmp_path_factory.mktemp("models"), settings) / settings.cxr_model_dir.name


def test_evaluate_split_scores_the_own_test_films_and_names_the_set(small_test_bundle, data_dir, tmp_path,
                                                                     monkeypatch, capsys):
    monkeypatch.setenv("CXR_DATA_DIR", str(data_dir))
    out = tmp_path / "run"
    rc = main(["evaluate", "--split", "test", "--model", str(small_test_bundle), "--out", str(out), "--workers", "0"])
    assert rc == 0
    bundle = load_cxr_bundle(small_test_bundle, device="cpu")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == f"{OWN_SPLIT_NAMES['test']} (the model's splits.csv)"
    assert metrics["model"] == bundle.model_id
    assert metrics["data"] == str(data_dir / "cxr") and metrics["n"] == 8 and metrics["n_errors"] == 0
    assert metrics["overlap"]["is_test"] and metrics["overlap"]["n_test"] == 8  # by sha256 against splits.csv
    preds = pd.read_csv(out / "predictions.csv")
    assert sorted(preds["path"].str.split("/").str[0]) == ["kermany"] * 4 + ["nih_adult"] * 4  # relative to cxr/
    assert Counter(zip(preds["source_population"], preds["label"])) == {(p, y): 2 for p in ("child", "adult")
                                                                        for y in (0, 1)}
    assert subgroup_columns(subgroup_frame(preds))[0] == "source_population"
    report = (out / "report.html").read_text()
    assert "own held-out test split (the model&#x27;s splits.csv)" in report
    assert "By population in the data set (<code>source_population</code>;" in report  # a human label first
    assert "id='mixed-populations'>This set mixes populations (child 4, adult 4)" in report
    assert "AUROC=" in capsys.readouterr().out


def test_evaluate_takes_a_set_or_a_split_never_both(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--split", "test", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--split", "train", "--out", str(tmp_path / "run")])  # only val or test
    assert not (tmp_path / "run").exists()
