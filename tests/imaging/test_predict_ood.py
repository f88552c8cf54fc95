"""The OOD check on both sides, in the CLI and in the review page's analysis: a real radiograph
is not flagged, a generated non-radiograph is (a check that always or never flags fails here)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cxr_model.cli import main
from cxr_model.imaging.layout import REASON_BLANK
from cxr_model.imaging.ood import load_ood
from cxr_model.imaging.review import analyse_study
from tests.imaging.synthetic import png_bytes


@pytest.fixture(scope="module")
def files(kermany_dir, dicom_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("ood-cli")
    noise = d / "uniform_noise.png"
    noise.write_bytes(png_bytes(np.random.default_rng(5).random((300, 400))))
    text = d / "checkerboard.png"
    text.write_bytes(png_bytes((((np.arange(256)[:, None] // 32) + (np.arange(320) // 32)) % 2).astype(float)))
    films = [sorted((kermany_dir / "val" / c).glob("*.jpeg"))[0] for c in ("NORMAL", "PNEUMONIA")]
    return films, [noise, text]


def test_cli_flags_non_radiographs_and_not_radiographs(files, capsys, cxr_bundle):
    films, others = files
    assert main(["predict", *map(str, films + others), "--json"]) == 0
    rows = {r["file"]: r for r in map(json.loads, capsys.readouterr().out.strip().splitlines())}
    assert [rows[str(f)]["ood"] for f in films] == [False, False]
    assert [rows[str(f)]["ood"] for f in others] == [True, True]
    threshold = load_ood(cxr_bundle).threshold
    for r in rows.values():
        # the one scope rule: the feature distance, or a reason named by the image check
        assert r["ood"] == (r["ood_score"] > threshold or bool(r["scope_reason"]))
        assert r["ood_threshold"] == pytest.approx(threshold) and bool(r["scope_reason"]) == r["ood"]
    # out of scope: no call; in scope: the call at the bundle's threshold
    assert [rows[str(f)]["label"] for f in others] == [None, None]
    assert all(rows[str(f)]["label"] in ("NORMAL", "PNEUMONIA") for f in films)


def test_cli_text_output_says_unreliable_only_for_the_non_radiograph(files, capsys):
    films, others = files
    assert main(["predict", str(films[1]), str(others[0])]) == 0
    film_line, noise_line = capsys.readouterr().out.strip().splitlines()
    assert "OOD ok" in film_line and "OUT OF SCOPE" not in film_line
    assert REASON_BLANK in noise_line and "OUT OF SCOPE" in noise_line and "no call" in noise_line
    assert "PNEUMONIA" not in noise_line and "NORMAL" not in noise_line


def test_review_analysis_flags_the_same_way(cxr_bundle, files):
    films, others = files
    ood = load_ood(cxr_bundle)
    flags = [analyse_study(cxr_bundle, f.read_bytes(), f.name, "GradCAM", ood).ood_flag for f in films + others]
    assert flags == [False, False, True, True]


def test_predict_json_says_scope_unknown_without_ood_statistics(files, capsys, cxr_bundle, tmp_path):
    import shutil

    bundle_dir = tmp_path / "no-ood"
    shutil.copytree(cxr_bundle.path, bundle_dir, ignore=shutil.ignore_patterns("ood.*"))
    films, others = files
    assert main(["predict", str(others[0]), "--model", str(bundle_dir), "--json"]) == 0
    out = capsys.readouterr()
    r = json.loads(out.out.strip())
    assert r["ood"] is None and r["ood_score"] is None and r["scope_reason"] is None and r["label"] in ("NORMAL", "PNEUMONIA")
    assert "out-of-distribution check unavailable" in out.err and "no OOD statistics" in out.err
