"""``evaluate`` and scope: OOD per file, in-scope metrics, overlap with the model's own split by sha256,
and what the report says about it. Real Kermany films (the bundle's own train split and the
official val films it never saw) beside generated non-radiographs."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cxr_model.cli import main
from cxr_model.imaging.ood import load_ood
from cxr_model.imaging.overlap import POPULATION_DIRS, HashCache, overlap_label, overlap_summary, sha256_of, split_hashes
from cxr_model.imaging.report.run import load_run
from cxr_model.metrics import classification as M
from tests.imaging.synthetic import png_bytes


def _write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def sets(kermany_dir, cxr_bundle, tmp_path_factory):
    """Two labelled CSVs: unseen films + non-radiographs, and films of the bundle's own train split."""
    d = tmp_path_factory.mktemp("scope")
    rng = np.random.default_rng(3)
    noise = d / "noise.png"
    noise.write_bytes(png_bytes(rng.random((300, 260))))
    checker = d / "checker.png"
    checker.write_bytes(png_bytes((((np.arange(256)[:, None] // 32) + (np.arange(256) // 32)) % 2).astype(float)))
    val = [(str(p), c) for c in ("NORMAL", "PNEUMONIA") for p in sorted((kermany_dir / "val" / c).glob("*.jpeg"))[:4]]
    unseen = _write_csv(d / "unseen.csv", val + [(str(noise), "NORMAL"), (str(checker), "PNEUMONIA")])
    with open(cxr_bundle.path / "splits.csv", newline="") as fh:
        own = [r for r in csv.DictReader(fh)]
    train = [(str(kermany_dir / r["path"]), r["label"]) for r in own if r["split"] == "train"][:3]
    valpart = [(str(kermany_dir / r["path"]), r["label"]) for r in own if r["split"] == "val"][:2]
    seen = _write_csv(d / "seen.csv", val[:3] + train + valpart)
    return {"unseen": unseen, "seen": seen, "others": {"noise.png", "checker.png"}, "d": d}


@pytest.fixture(scope="module")
def unseen_run(sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "unseen"
    assert main(["evaluate", "--data", str(sets["unseen"]), "--out", str(out), "--workers", "0"]) == 0
    return out


def test_evaluate_flags_non_radiographs_and_reports_in_scope_metrics(unseen_run, sets, cxr_bundle):
    preds = pd.read_csv(unseen_run / "predictions.csv")
    m = json.loads((unseen_run / "metrics.json").read_text())
    ood = load_ood(cxr_bundle)
    is_other = preds["path"].isin(sets["others"])  # paths as written: relative to the CSV's folder
    assert preds.loc[is_other, "ood"].tolist() == [1, 1] and (preds.loc[~is_other, "ood"] == 0).all()
    reason = preds["scope_reason"].fillna("")
    assert (((preds["ood_score"] > ood.threshold) | (reason != "")).astype(int) == preds["ood"]).all()
    assert ((reason != "") == (preds["ood"] == 1)).all()  # every withheld file says why, no in-scope file does
    assert m["out_of_scope_by_reason"] == reason[reason != ""].value_counts().to_dict()
    # top level over every readable file; in-scope block over the unflagged ones only
    assert m["n"] == len(preds) == 10 and m["n_out_of_scope"] == 2 and m["ood_rate"] == pytest.approx(0.2)
    ins = preds[preds["ood"] == 0]
    ref = M.summary(ins["label"].to_numpy(), ins["probability"].to_numpy(), m["threshold"])
    assert m["in_scope"]["n"] == 8 and m["in_scope"]["auroc"] == pytest.approx(ref["auroc"])
    assert m["in_scope"]["specificity"] == pytest.approx(ref["specificity"])
    assert m["auroc"] == pytest.approx(M.compute_auroc(preds["label"], preds["probability"]))
    assert preds["sha256"].tolist() == [sha256_of(sets["d"] / p) for p in preds["path"]]


def test_report_puts_intended_use_and_ood_rate_on_top(unseen_run):
    html = (unseen_run / "report.html").read_text()
    top = html[: html.index("<h2>Data</h2>")]
    assert "Intended use:" in top and "Out of scope (OOD): 2 of 10" in top and "8 in-scope files" in top
    assert "no file of the model&#x27;s training or validation split" in top
    assert "not a test" not in html


def test_set_holding_training_files_is_not_called_a_test(sets, tmp_path, capsys):
    out = tmp_path / "seen"
    assert main(["evaluate", "--data", str(sets["seen"]), "--out", str(out), "--workers", "0"]) == 0
    assert "WARNING: overlaps the model's training data (3 training and 2 validation files of 8)" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["overlap"]["n_train"] == 3 and m["overlap"]["n_val"] == 2 and m["overlap"]["is_test"] is False
    run = load_run(out)
    assert run.split.endswith("(overlaps training data: not a test)")
    html = (out / "report.html").read_text()
    top = html[: html.index("<h2>Data</h2>")]
    assert "banner warn" in top and "not a test result" in top
    assert html.count("overlaps training data: not a test") >= 5  # beside every metric row too


def test_evaluate_without_ood_statistics_says_scope_unknown(sets, cxr_bundle, tmp_path):
    bundle_dir = tmp_path / "no-ood"
    shutil.copytree(cxr_bundle.path, bundle_dir, ignore=shutil.ignore_patterns("ood.*"))
    out = tmp_path / "run"
    assert main(["evaluate", "--data", str(sets["unseen"]), "--model", str(bundle_dir), "--out", str(out),
                 "--workers", "0"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_out_of_scope"] is None and m["in_scope"] is None and "unavailable" in m["ood_check"]
    assert pd.read_csv(out / "predictions.csv")["ood"].isna().all()
    assert "Out-of-scope (OOD) check: unavailable" in (out / "report.html").read_text()


def test_split_hashes_agree_with_the_files_and_the_cache_rehashes_a_changed_file(cxr_bundle, data_dir, kermany_dir,
                                                                                 tmp_path):
    seen, unknown = split_hashes(cxr_bundle.path, data_dir)
    with open(cxr_bundle.path / "splits.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert unknown == 0 and len(seen) <= len(rows)
    roots = {pop: data_dir.joinpath(*parts) for pop, parts in POPULATION_DIRS.items()}
    for r in rows[:: max(len(rows) // 20, 1)]:  # the manifest's hash is the file's hash, for each population
        assert seen[sha256_of(roots[r.get("population") or "child"] / r["path"])] == r["split"]
    f = tmp_path / "x.bin"
    f.write_bytes(b"one")
    cache = HashCache(tmp_path / "cache.json")
    first = cache.sha256(f)
    cache.save()
    f.write_bytes(b"other bytes")
    assert HashCache(tmp_path / "cache.json").sha256(f) == sha256_of(f) != first


def test_overlap_summary_counts_by_part():
    seen = {"a": "train", "b": "val", "c": "test"}
    s = overlap_summary([("x", "a"), ("y", "c"), ("z", "zz"), ("w", "")], seen)
    assert (s["n_files"], s["n_train"], s["n_val"], s["n_test"], s["is_test"]) == (4, 1, 0, 1, False)
    assert overlap_summary([("y", "c")], seen)["is_test"] is True  # the model's own test part is a test


def test_one_training_and_one_validation_file_make_a_set_no_test_and_the_report_says_why():
    seen = {f"t{i}": "train" for i in range(4)} | {f"v{i}": "val" for i in range(4)} | {"c": "test"}
    s = overlap_summary([(f"f{i}", f"t{i}") for i in range(4)] + [(f"g{i}", f"v{i}") for i in range(4)]
                        + [("h", "c")], seen, n_unknown=2)
    assert (s["n_train"], s["n_val"], s["n_test"], s["is_test"]) == (4, 4, 1, False)  # equal counts: still no test
    assert s["examples"] == ["f0 (train)", "f1 (train)", "f2 (train)", "f3 (train)", "g0 (val)"]  # 5, never a test file
    assert s["n_split_unhashed"] == 2 and overlap_summary([], seen)["n_split_unhashed"] == 0
    assert overlap_label(s) == "overlaps the model's training data (4 training and 4 validation files of 9): not a test"
    assert overlap_label(overlap_summary([("h", "c")], seen)) == \
        "no file of the model's training or validation split (checked 1 files by sha256)"
    assert overlap_label(None) == ("overlap with the model's training data unknown: not checked (run scored before "
                                   "this check existed)")
    assert overlap_label({"checked": False, "reason": "the bundle has no splits.csv"}).endswith(": the bundle has no splits.csv")


def test_one_forward_gives_the_same_probabilities_and_features_as_two(cxr_bundle, kermany_dir):
    import torch

    from cxr_model.imaging.ood import batch_features
    from cxr_model.imaging.predict import predict_batch, predict_with_features
    from cxr_model.imaging.transforms import load_tensor

    films = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[:3]
    x = torch.stack([load_tensor(f, cxr_bundle.img_size) for f in films])
    p, f = predict_with_features(cxr_bundle, x)
    assert np.allclose(p, predict_batch(cxr_bundle, x), atol=1e-6)
    assert f.shape == (3, 512) and np.allclose(f, batch_features(cxr_bundle, x), atol=1e-5)


def test_the_hash_cache_trusts_size_and_mtime_rehashes_either_change_and_survives_damage(tmp_path):
    import hashlib
    import os

    f = tmp_path / "film.bin"
    f.write_bytes(b"abc")
    store = tmp_path / "state" / "deep" / "cache.json"  # save makes the folders
    cache = HashCache(store)
    assert cache.sha256(f) == sha256_of(f)
    cache.save()
    saved = store.stat().st_mtime_ns
    st = f.stat()
    f.write_bytes(b"xyz")  # same size; its mtime put back: the cache is trusted, not re-read
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = HashCache(store)
    old_digest = hashlib.sha256(b"abc").hexdigest()
    assert again.sha256(f) == old_digest != sha256_of(f)
    again.save()
    assert store.stat().st_mtime_ns == saved  # nothing new: the cache file is not rewritten
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new mtime: re-hashed
    assert again.sha256(f) == sha256_of(f)
    f.write_bytes(b"longer")  # a new size: re-hashed
    assert HashCache(store).sha256(f) == sha256_of(f)
    store.write_text("{not json")
    assert HashCache(store).sha256(f) == sha256_of(f)  # a damaged cache costs only a re-hash
    assert HashCache(None).sha256(f) == sha256_of(f)
