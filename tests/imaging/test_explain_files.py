"""``cxr-model explain``: peak_xy in the original image's pixels (aspect not kept by the model's
squash), the CLI's JSON and overlays on real films, and per-file errors that keep the batch going."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cxr_model.cli import main
from cxr_model.imaging.explain import EXPLAIN_META, default_cam
from cxr_model.imaging.explain_files import peak_pixel
from cxr_model.imaging.io import read_image
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.transforms import to_source
from tests.imaging.synthetic import png_bytes


@pytest.mark.parametrize("h, w, spot_xy", [(300, 800, (600, 90)), (900, 250, (40, 700)), (224, 224, (200, 10)),
                                          (1024, 1024, (512, 300))])
def test_peak_xy_finds_a_bright_spot_through_the_squash(h, w, spot_xy):
    # A generated non-square image with one bright spot goes through the model's squash; a map equal
    # to the squashed image peaks where the spot landed; peak_xy must map it back onto the spot.
    img = np.zeros((h, w), np.float32)
    x0, y0 = spot_xy
    r = max(h, w) // 40
    img[max(y0 - r, 0):y0 + r + 1, max(x0 - r, 0):x0 + r + 1] = 1.0
    cam = to_source(img)[0].numpy().astype(np.float32) / 255.0
    x, y = peak_pixel(cam, h, w)
    assert 0 <= x < w and 0 <= y < h
    assert abs(x - x0) <= r + w / 224 and abs(y - y0) <= r + h / 224, (x, y)


def test_peak_xy_of_a_synthetic_map_cell_is_that_cell_scaled_per_axis():
    cam = np.zeros((224, 224), np.float32)
    cam[10, 200] = 1.0  # row 10, column 200 of the squashed input
    # width 1000 and height 112: x scales by 1000/224, y by 112/224 (not one common factor)
    assert peak_pixel(cam, 112, 1000) == [int(200.5 * 1000 / 224), int(10.5 * 112 / 224)]
    cam[:] = 0
    cam[223, 223] = 1.0
    assert peak_pixel(cam, 50, 60) == [59, 49]  # the last pixel, never one past the edge


@pytest.fixture(scope="module")
def inputs(kermany_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    film = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
    wide = d / "wide_film.png"  # a real film stretched to 3:1 (the original frame is not square)
    g = read_image(film)
    wide.write_bytes(png_bytes(np.asarray(Image.fromarray(g).resize((g.shape[1] * 3, g.shape[0])))))
    broken = d / "cut.jpeg"
    broken.write_bytes(film.read_bytes()[:300])
    return film, wide, broken, d / "missing.png"


def test_explain_json_gives_probability_method_peak_and_overlay(inputs, capsys, cxr_bundle, tmp_path):
    film, wide, _, _ = inputs
    out = tmp_path / "maps"
    assert main(["explain", str(film), str(wide), "--json", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["file"] for r in rows] == [str(film), str(wide)]
    method, layer = default_cam(cxr_bundle)
    for r, f in zip(rows, (film, wide)):
        g = read_image(f)
        assert r["error"] is None and r["method"] == method and r["layer"] in ("layer4", layer)
        assert r["probability"] == pytest.approx(predict_source(cxr_bundle, f).probability, abs=1e-4)
        assert (r["width"], r["height"]) == (g.shape[1], g.shape[0])
        assert 0 <= r["peak_xy"][0] < r["width"] and 0 <= r["peak_xy"][1] < r["height"]
        assert Image.open(r["overlay"]).size == (r["width"], r["height"])  # the overlay is in the original frame
        assert r["ood"] is False and r["label"] in ("NORMAL", "PNEUMONIA")


def test_explain_names_each_bad_file_and_carries_on(inputs, capsys, tmp_path):
    film, _, broken, missing = inputs
    assert main(["explain", str(broken), str(missing), str(film), "--method", "EigenCAM", "--json"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["file"] for r in rows] == [str(broken), str(missing), str(film)]
    assert broken.name in rows[0]["error"] and missing.name in rows[1]["error"]
    assert rows[0]["probability"] is None and rows[1]["peak_xy"] is None
    assert rows[2]["error"] is None and rows[2]["method"] == "EigenCAM" and rows[2]["peak_xy"] is not None


def test_explain_text_output_and_bad_arguments(inputs, capsys):
    film, _, broken, _ = inputs
    assert main(["explain", str(broken), str(film)]) == 1
    bad_line, good_line = capsys.readouterr().out.strip().splitlines()
    assert bad_line.startswith("ERROR ") and broken.name in bad_line
    assert "peak at x=" in good_line and "P(pneumonia)=" in good_line
    assert main(["explain", str(film), "--method", "MagicCAM"]) == 2
    assert "MagicCAM" in capsys.readouterr().err


def test_default_cam_follows_the_weights(cxr_bundle, tmp_path):
    import shutil

    bundle_dir = tmp_path / "b"
    shutil.copytree(cxr_bundle.path, bundle_dir)
    from cxr_model.imaging.bundle import load_cxr_bundle

    b = load_cxr_bundle(bundle_dir, device="cpu")
    (bundle_dir / EXPLAIN_META).write_text(json.dumps({"method": "LayerCAM", "layer": "layer3",
                                                       "model_sha256": b.meta["sha256"]}))
    assert default_cam(b) == ("LayerCAM", "layer3")
    (bundle_dir / EXPLAIN_META).write_text(json.dumps({"method": "LayerCAM", "layer": "layer3",
                                                       "model_sha256": "0" * 64}))
    assert default_cam(b) == ("GradCAM", None)  # measured on other weights: not this model's default
    (bundle_dir / EXPLAIN_META).unlink()
    assert default_cam(b) == ("GradCAM", None)
