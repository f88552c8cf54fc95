"""DICOM header -> operating point and scope: PatientAge picks the population, a declared lateral view
is out of scope with its reason (predict, evaluate, the review page's analysis). Real RSNA DICOMs,
changed in a temporary folder (only the header fields under test)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cxr_model.cli import main
from cxr_model.imaging.dicom_context import NO_CONTEXT, context_of, header_context, path_context
from cxr_model.imaging.evaluate import run_evaluation
from cxr_model.imaging.ood import load_ood
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.review import analyse_study


def _manifest(dicom_dir) -> list[dict]:
    with open(dicom_dir / "manifest.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["path"].startswith("rsna/")]


@pytest.fixture(scope="module")
def adult(dicom_dir, cxr_bundle):
    """A real adult RSNA film (PA, PatientAge 51) that the OOD check keeps in scope."""
    ood = load_ood(cxr_bundle)
    for r in _manifest(dicom_dir):
        if int(r["age"]) >= 18 and not predict_source(cxr_bundle, dicom_dir / r["path"], ood=ood).ood:
            return dicom_dir / r["path"]
    pytest.fail("no in-scope adult RSNA DICOM")


def _changed(src, dest, **fields):
    ds = pydicom.dcmread(src)
    for k, v in fields.items():
        if v is not None:
            setattr(ds, k, v)
        elif k in ds:
            delattr(ds, k)
    ds.save_as(dest)
    return dest


def test_real_dicoms_declare_their_population_by_age(dicom_dir, cxr_bundle):
    for r in _manifest(dicom_dir):
        ctx = path_context(dicom_dir / r["path"])
        assert ctx.population == ("adult" if int(r["age"]) >= 18 else "child"), r["path"]
        assert ctx.scope_reason is None  # PA/AP films
        p = predict_source(cxr_bundle, dicom_dir / r["path"])
        assert (p.population, p.population_source) == (ctx.population, "dicom_age")


def test_age_chooses_the_operating_point_and_no_age_keeps_the_image_estimate(adult, cxr_bundle, kermany_dir, tmp_path):
    child = predict_source(cxr_bundle, _changed(adult, tmp_path / "child.dcm", PatientAge="004Y"))
    as_adult = predict_source(cxr_bundle, adult)
    assert (child.population, child.population_source) == ("child", "dicom_age")
    assert child.probability == pytest.approx(predict_source(cxr_bundle, adult, population="child").probability)
    assert child.probability != pytest.approx(as_adult.probability, abs=1e-4)  # the two maps differ
    no_age = predict_source(cxr_bundle, _changed(adult, tmp_path / "noage.dcm", PatientAge=None))
    assert no_age.population_source in ("image_estimate", "pooled")
    if no_age.population_source == "image_estimate":  # the image's estimate, applied as if declared
        assert no_age.probability == pytest.approx(predict_source(cxr_bundle, adult, population=no_age.population).probability)
    png = predict_source(cxr_bundle, sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[0])
    assert png.population_source in ("image_estimate", "pooled") and header_context(b"\x89PNG\r\n\x1a\n") == NO_CONTEXT


@pytest.mark.parametrize("fields, says", [
    ({"ViewPosition": "LL"}, "ViewPosition LL"),
    ({"ViewPosition": "LATERAL"}, "ViewPosition LATERAL"),
    ({"ViewPosition": "", "SeriesDescription": "CHEST LAT"}, "SeriesDescription"),
    ({"ViewPosition": "", "PatientOrientation": ["P", "F"]}, "PatientOrientation"),
])
def test_a_declared_lateral_view_gets_no_call_and_a_named_reason(adult, cxr_bundle, tmp_path, fields, says, capsys):
    f = _changed(adult, tmp_path / "lateral.dcm", **fields)
    r = predict_source(cxr_bundle, f, ood=load_ood(cxr_bundle))
    assert r.ood is True and r.label is None and says in r.scope_reason and "lateral" in r.scope_reason
    assert r.ood_score <= r.ood_threshold  # the image alone would have passed: the header decides
    assert main(["predict", "--json", str(f)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["ood"] is True and row["label"] is None and says in row["scope_reason"]
    # without an OOD check the declared view still decides
    assert predict_source(cxr_bundle, f).ood is True and predict_source(cxr_bundle, adult).ood is None


@pytest.mark.parametrize("fields", [{"ViewPosition": "PA", "SeriesDescription": "CHEST LAT"},
                                    {"ViewPosition": "", "SeriesDescription": "PA AND LAT"},
                                    {"ViewPosition": "", "SeriesDescription": "BILATERAL HANDS"}])
def test_frontal_or_ambiguous_headers_are_not_called_lateral(adult, tmp_path, fields):
    assert path_context(_changed(adult, tmp_path / "f.dcm", **fields)).scope_reason is None


def test_view_code_sequence_lateral_but_not_decubitus():
    for meaning, lateral in (("left lateral", True), ("right lateral decubitus", False), ("postero-anterior", False)):
        ds = Dataset()
        code = Dataset()
        code.CodeMeaning = meaning
        ds.ViewCodeSequence = Sequence([code])
        assert (context_of(ds).scope_reason is not None) == lateral, meaning


def test_evaluate_writes_population_and_counts_a_lateral_out_of_scope(adult, cxr_bundle, kermany_dir, tmp_path):
    lat = _changed(adult, tmp_path / "lat.dcm", ViewPosition="LL")
    kid = _changed(adult, tmp_path / "kid.dcm", PatientAge="006Y")
    film = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
    data = tmp_path / "set.csv"
    data.write_text(f"path,label\n{adult},0\n{lat},0\n{kid},0\n{film},1\n")
    m = run_evaluation(data, cxr_bundle, tmp_path / "run", workers=0, show_bar=False)
    with open(tmp_path / "run" / "predictions.csv", newline="") as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    assert rows[lat.name]["ood"] == "1" and "ViewPosition LL" in rows[lat.name]["scope_reason"]
    assert rows[adult.name]["ood"] == "0" and rows[adult.name]["scope_reason"] == ""
    assert (rows[adult.name]["population"], rows[adult.name]["population_source"]) == ("adult", "dicom_age")
    assert (rows[kid.name]["population"], rows[kid.name]["population_source"]) == ("child", "dicom_age")
    assert rows[film.name]["population_source"] in ("image_estimate", "pooled")
    assert float(rows[kid.name]["probability"]) == pytest.approx(
        predict_source(cxr_bundle, adult, population="child").probability, abs=1e-5)
    assert m["n_out_of_scope"] >= 1 and m["in_scope"]["n"] == m["n"] - m["n_out_of_scope"]


def test_review_analysis_uses_age_and_withholds_a_lateral(adult, cxr_bundle, tmp_path):
    ood = load_ood(cxr_bundle)
    kid = _changed(adult, tmp_path / "kid.dcm", PatientAge="010Y").read_bytes()
    s = analyse_study(cxr_bundle, kid, "kid.dcm", ood=ood)
    assert (s.population, s.population_source) == ("child", "dicom_age")
    assert s.probability == pytest.approx(predict_source(cxr_bundle, adult, population="child").probability, abs=1e-5)
    lat = analyse_study(cxr_bundle, _changed(adult, tmp_path / "lat.dcm", ViewPosition="RL").read_bytes(), "l.dcm", ood=ood)
    assert lat.ood_flag and "ViewPosition RL" in lat.scope_reason


def test_explain_command_follows_the_header_too(adult, tmp_path, capsys):
    lat = _changed(adult, tmp_path / "lat.dcm", ViewPosition="LATERAL")
    kid = _changed(adult, tmp_path / "kid.dcm", PatientAge="012Y")
    assert main(["explain", "--json", str(lat), str(kid)]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert rows[0]["ood"] is True and rows[0]["label"] is None and "ViewPosition LATERAL" in rows[0]["scope_reason"]
    assert rows[1]["population_source"] == "dicom_age" and rows[1]["label"] in ("NORMAL", "PNEUMONIA")
