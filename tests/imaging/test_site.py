"""Site profiles from the command line: adapt, recalibrate, list, then predict/evaluate --site.

Real films: the 16 official Kermany val films (another uploader) as a site's unlabelled studies;
a labelled "local set" of films from the bundle's own child validation part (12 pneumonia, 8 normal).
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from cxr_model.cli import main
from cxr_model.imaging.ood import load_ood
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.site import (
    MIN_POSITIVES, NO_SITE, apply_site, choose_threshold, list_profiles, read_profile, site_folder,
)
from cxr_model.imaging.splits import split_items
from cxr_model.metrics.classification import wilson_interval
from cxr_model.registry import BundleError


@pytest.fixture(scope="module")
def local_set(cxr_bundle, kermany_dir, tmp_path_factory):
    """A labelled local CSV (absolute paths): 12 pneumonia and 8 normal films of the bundle's child val part."""
    items = split_items(cxr_bundle, kermany_dir, "val", "child")
    pos = [it for it in items if it.label == 1][:12]
    neg = [it for it in items if it.label == 0][:8]
    path = tmp_path_factory.mktemp("local") / "local.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows([str(it.path), it.label] for it in pos + neg)
    return path, pos + neg


# ------------------------------------------------------------------------------ threshold rule
def test_threshold_is_the_highest_that_meets_the_target_as_sklearn_counts_it():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(40), np.zeros(60)].astype(int)
    p = np.r_[rng.beta(5, 2, 40), rng.beta(2, 5, 60)]
    r = choose_threshold(y, p, 0.95)
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    assert r["sensitivity"] >= 0.95 and r["sensitivity"] == pytest.approx(np.mean(p[y == 1] >= r["threshold"]))
    assert r["specificity"] == pytest.approx(1 - fpr[tpr >= 0.95].min())  # the best specificity at that sensitivity
    assert r["sensitivity_ci95"] == wilson_interval(round(r["sensitivity"] * 40), 40)
    assert (r["n"], r["n_pneumonia"], r["n_normal"]) == (100, 40, 60)


def test_threshold_by_hand_lies_between_the_last_called_film_and_the_next_lower():
    y = [1] * 10 + [0] * 5
    p = [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.2] + [0.45, 0.3, 0.1, 0.05, 0.01]
    # 90 %: 9 of 10 pneumonia films must be called; the 9th highest is 0.5, the next lower film 0.45
    r = choose_threshold(y, p, 0.9)
    assert r["threshold"] == pytest.approx(0.475)
    assert (r["sensitivity"], r["specificity"]) == (0.9, 1.0)
    assert choose_threshold(y, p, 1.0)["threshold"] == pytest.approx(0.15)  # all ten: below 0.2, above 0.1


def test_too_few_positives_or_a_bad_target_is_refused_with_a_reason():
    with pytest.raises(ValueError, match=f"at least {MIN_POSITIVES} pneumonia"):
        choose_threshold([1] * 9 + [0] * 20, np.linspace(0, 1, 29))
    with pytest.raises(ValueError, match="target sensitivity"):
        choose_threshold([1] * 10 + [0] * 10, np.linspace(0, 1, 20), 1.5)


def test_the_site_folder_is_never_inside_the_data_folder(data_dir, monkeypatch):
    monkeypatch.setenv("CXR_SITE_DIR", str(data_dir / "sites"))
    with pytest.raises(ValueError, match="read-only data folder"):
        site_folder()
    assert main(["site", "adapt", "ward", str(data_dir / "cxr" / "kermany" / "val")]) == 2


# ----------------------------------------------------------------------------------- commands
def test_adapt_recalibrate_list_then_predict_and_evaluate_use_the_profile(
        cxr_bundle, kermany_dir, local_set, site_dir, tmp_path, capsys):
    csv_path, items = local_set
    # the site's unlabelled films: the official val folder and the local set's films (what the scope check
    # flags among them is left out, see test_site_scope.py)
    films = sorted((kermany_dir / "val").rglob("*.jpeg")) + [it.path for it in items]
    ood = load_ood(cxr_bundle)
    n_in = sum(not predict_source(cxr_bundle, f, ood=ood).ood for f in films)
    assert main(["site", "adapt", "ward-3", str(kermany_dir / "val"), *(str(it.path) for it in items)]) == 0
    assert f"on {n_in} films" in capsys.readouterr().out
    assert (site_dir / "ward-3.pt").exists() and read_profile(site_dir, "ward-3")["n_films"] == n_in

    assert main(["site", "recalibrate", "ward-3", "--data", str(csv_path), "--target-sensitivity", "0.95"]) == 0
    rec = read_profile(site_dir, "ward-3")["recalibration"]
    assert rec["bn_adapted"] and rec["n"] + rec["n_out_of_scope_left_out"] == len(items)
    assert rec["sensitivity"] >= 0.95 and len(rec["specificity_ci95"]) == 2
    # the threshold is the rule applied to the adapted network's probabilities on the in-scope films
    site = apply_site(cxr_bundle, "ward-3", site_dir)
    preds = [predict_source(site, it.path) for it in items]
    keep = [not p.ood for p in preds] if preds[0].ood is not None else [True] * len(preds)
    again = choose_threshold([it.label for it, k in zip(items, keep) if k], [p.probability for p, k in zip(preds, keep) if k])
    assert rec["threshold"] == pytest.approx(again["threshold"]) and site.threshold == pytest.approx(rec["threshold"])
    assert cxr_bundle.threshold == 0.5 and cxr_bundle.site_profile is None  # the shared bundle is untouched

    assert main(["site", "list"]) == 0
    assert "ward-3" in capsys.readouterr().out and [p["name"] for p in list_profiles(site_dir, cxr_bundle)] == ["ward-3"]

    film = items[0].path
    assert main(["predict", "--json", "--site", "ward-3", str(film)]) == 0
    with_site = json.loads(capsys.readouterr().out)
    assert main(["predict", "--json", str(film)]) == 0
    bundled = json.loads(capsys.readouterr().out)
    assert with_site["site_profile"] == "ward-3" and with_site["threshold"] == pytest.approx(rec["threshold"])
    assert bundled["site_profile"] is None and bundled["threshold"] == 0.5
    assert with_site["probability"] != pytest.approx(bundled["probability"], abs=1e-6)  # adapted BN statistics

    out = tmp_path / "run"
    assert main(["evaluate", "--data", str(csv_path), "--out", str(out), "--workers", "0", "--site", "ward-3"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["site_profile"]["name"] == "ward-3" and m["threshold"] == pytest.approx(rec["threshold"])
    assert m["in_scope"]["sensitivity"] >= 0.95  # the same films it was chosen on: the promise holds there
    assert "Site profile &#x27;ward-3&#x27;" in (out / "report.html").read_text() or \
        "Site profile 'ward-3'" in (out / "report.html").read_text()
    assert "ward-3" in capsys.readouterr().out


def test_recalibration_refuses_a_set_with_too_few_pneumonia_films(kermany_dir, site_dir, capsys):
    # the official val set has 8 pneumonia films
    assert main(["site", "recalibrate", "small", "--data", str(kermany_dir / "val")]) == 2
    err = capsys.readouterr().err
    assert "at least 10 pneumonia" in err and str(kermany_dir / "val") in err
    assert read_profile(site_dir, "small") is None


def test_a_profile_for_other_weights_or_a_missing_one_is_refused(cxr_bundle, local_set, site_dir, capsys):
    with pytest.raises(BundleError, match="no such site profile"):
        apply_site(cxr_bundle, "nowhere", site_dir)
    assert main(["predict", "--site", "nowhere", str(local_set[1][0].path)]) == 2
    assert "no such site profile" in capsys.readouterr().err
    site_dir.mkdir(parents=True)
    (site_dir / "old.json").write_text(json.dumps({"name": "old", "model": "x@0", "model_sha256": "0" * 64}))
    with pytest.raises(BundleError, match="other weights"):
        apply_site(cxr_bundle, "old", site_dir)
    assert list_profiles(site_dir, cxr_bundle) == [] and apply_site(cxr_bundle, None) is cxr_bundle
    assert NO_SITE == "Bundled model (no site profile)"


def test_the_study_report_names_the_site_profile_and_the_population(cxr_bundle, kermany_dir, site_dir):
    from cxr_model.imaging.adapt import adapt_batchnorm, save_site_profile
    from cxr_model.imaging.data import kermany_items, load_sources
    from cxr_model.imaging.report.study import render_study_report
    from cxr_model.imaging.review import analyse_study

    save_site_profile(adapt_batchnorm(cxr_bundle, load_sources(kermany_items(kermany_dir, "val"))[0]), site_dir, "ward-9")
    site = apply_site(cxr_bundle, "ward-9", site_dir)
    f = sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[0]
    reports = {}
    for b in (site, cxr_bundle):
        s = analyse_study(b, f.read_bytes(), f.name)
        reports[b.site_profile] = render_study_report(s, s.display, np.dstack([s.display] * 3), b.meta)
        assert s.site_profile == b.site_profile and s.population_source in ("image_estimate", "pooled")
    assert "Site profile &#x27;ward-9&#x27;: batch-norm statistics from 16 local films" in reports["ward-9"]
    assert NO_SITE in reports[None] and "ward-9" not in reports[None]


def test_a_local_threshold_is_stored_for_these_weights_only_beside_what_the_profile_had(cxr_bundle, tmp_path):
    from cxr_model.imaging.site import save_recalibration

    rec = choose_threshold([1] * 10 + [0] * 10, np.linspace(0.05, 0.95, 20), 0.9)
    folder = tmp_path / "sites" / "deep"  # made on the way
    path = save_recalibration(cxr_bundle, folder, "ward-5", rec)
    info = json.loads(path.read_text())
    assert path == folder / "ward-5.json"
    assert (info["name"], info["model"], info["model_sha256"]) == ("ward-5", cxr_bundle.model_id, cxr_bundle.meta["sha256"])
    assert info["recalibration"]["threshold"] == rec["threshold"] and info["created"][:4].isdigit()
    assert info["recalibration"]["scale"] == f"the bundle's centred probability (bundled threshold {cxr_bundle.threshold:.3f})"
    info["bn"] = "kept"  # what an earlier `site adapt` wrote stays
    path.write_text(json.dumps(info))
    again = json.loads(save_recalibration(cxr_bundle, folder, "ward-5", dict(rec, threshold=0.42)).read_text())
    assert again["bn"] == "kept" and again["recalibration"]["threshold"] == 0.42
    (folder / "old.json").write_text(json.dumps({"name": "old", "model": "x@0", "model_sha256": "0" * 64}))
    with pytest.raises(BundleError, match=r"old\.json: site profile was made for other weights"):
        save_recalibration(cxr_bundle, folder, "old", rec)


def test_the_threshold_rule_at_its_edges():
    # No film lies below the lowest pneumonia film that must be called: the threshold is that film's own
    # probability, it is called, and a normal film at exactly that probability is called too (not a true negative).
    y = [1] * 10 + [0] * 10
    p = [0.1] + [0.9] * 9 + [0.1] + [0.5] * 9
    r = choose_threshold(y, p, 1.0)
    assert r["threshold"] == 0.1 and r["sensitivity"] == 1.0 and r["specificity"] == 0.0
    with pytest.raises(ValueError, match="target sensitivity 0"):
        choose_threshold(y, p, 0)
    with pytest.raises(ValueError, match="finite"):
        choose_threshold(y, p[:-1] + [float("nan")], 0.9)


def test_listing_skips_damaged_profiles_and_other_weights_without_stopping(cxr_bundle, tmp_path):
    from cxr_model.imaging.site import profile_sha256

    mine = {"model": cxr_bundle.model_id, "model_sha256": cxr_bundle.meta["sha256"], "note": "kept"}
    (tmp_path / "a-broken.json").write_text("{not json")
    (tmp_path / "b-other.json").write_text(json.dumps({"model": "x@0", "model_sha256": "0" * 64}))
    (tmp_path / "c-mine.json").write_text(json.dumps(mine))
    (tmp_path / "c-mine.pt").write_bytes(b"bn")
    (tmp_path / "d-mine.json").write_text(json.dumps(mine))
    rows = list_profiles(tmp_path, cxr_bundle)
    assert [(r["name"], r["adapted"], r["note"]) for r in rows] == [("c-mine", True, "kept"), ("d-mine", False, "kept")]
    assert [r["name"] for r in list_profiles(tmp_path)] == ["b-other", "c-mine", "d-mine"]  # without a bundle: all readable
    assert profile_sha256(tmp_path, "none-here") is None
    assert profile_sha256(tmp_path, "c-mine") != profile_sha256(tmp_path, "d-mine")  # the BN file counts
