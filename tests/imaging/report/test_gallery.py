"""The failure gallery: which cases, their thumbnails, and Grad-CAM when (and only when) it works."""
import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxr_model.imaging.report import gallery as G
from cxr_model.imaging.report.gallery import build_gallery, failure_cases


@pytest.fixture
def predictions(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        img = (rng.random((80, 64)) * 255).astype(np.uint8)  # a generated grey "radiograph", portrait
        Image.fromarray(img).save(tmp_path / f"img{i}.png")
        paths.append(f"img{i}.png")
    return pd.DataFrame({"path": paths, "label": [1, 1, 1, 0, 0, 0],
                         "probability": [0.2, 0.05, 0.9, 0.95, 0.6, 0.1]})


def test_failure_cases_are_the_most_confident_mistakes(predictions):
    f = failure_cases(predictions, 0.5, k=6)
    assert f["false negative"]["probability"].tolist() == [0.05, 0.2]  # lowest first
    assert f["false positive"]["probability"].tolist() == [0.95, 0.6]  # highest first
    assert len(failure_cases(predictions, 0.5, k=1)["false positive"]) == 1


def test_thumbnails_without_a_model_keep_the_aspect_ratio(predictions, tmp_path):
    items = build_gallery(failure_cases(predictions, 0.5), [tmp_path], bundle=None, px=40)
    assert len(items) == 4 and all(g.image_png and g.cam_png is None for g in items)
    assert "without Grad-CAM" in items[0].note
    import io
    assert Image.open(io.BytesIO(items[0].image_png)).size == (32, 40)


def test_missing_and_unreadable_images_are_noted_not_raised(predictions, tmp_path):
    (tmp_path / "img1.png").write_bytes(b"not an image at all, just text")
    (tmp_path / "img3.png").unlink()
    items = {g.path: g for g in build_gallery(failure_cases(predictions, 0.5), [tmp_path])}
    assert items["img1.png"].image_png is None and "img1.png" in items["img1.png"].note
    assert items["img3.png"].note == "image file not found"


def _fake_explain(monkeypatch, compute_cam):
    monkeypatch.setattr(G, "compute_cam", compute_cam)
    monkeypatch.setattr(G, "overlay", lambda gray, cam, alpha: np.dstack([gray, cam, gray]).__mul__(255).astype(np.uint8))


def test_grad_cam_overlay_is_added_at_the_thumbnail_size(predictions, tmp_path, monkeypatch):
    seen = {}

    def compute_cam(bundle, tensor, method="GradCAM"):
        seen["shape"], seen["method"] = tuple(tensor.shape), method
        return np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)

    _fake_explain(monkeypatch, compute_cam)
    items = build_gallery(failure_cases(predictions, 0.5), [tmp_path], bundle=types.SimpleNamespace(img_size=16), px=40)
    assert seen == {"shape": (1, 16, 16), "method": "GradCAM"}
    import io
    assert all(Image.open(io.BytesIO(g.cam_png)).size == (32, 40) for g in items)


def test_a_failing_grad_cam_leaves_the_radiograph_and_says_why(predictions, tmp_path, monkeypatch):
    def compute_cam(bundle, tensor, method="GradCAM"):
        raise RuntimeError("no target layer")

    _fake_explain(monkeypatch, compute_cam)
    items = build_gallery(failure_cases(predictions, 0.5), [tmp_path], bundle=types.SimpleNamespace(img_size=16))
    assert all(g.image_png and g.cam_png is None and g.note == "Grad-CAM failed: no target layer" for g in items)


def test_images_outside_the_allowed_folders_are_never_read(tmp_path):
    """A crafted predictions.csv cannot put server files on the page (absolute, '..' or via a link)."""
    from cxr_model.imaging.report.gallery import gallery_item, resolve_image

    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir(), outside.mkdir()
    rng = np.random.default_rng(1)
    for folder in (data, outside):
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(folder / "film.png")
    (data / "link.png").symlink_to(outside / "film.png")
    allowed = [data]
    assert resolve_image("film.png", [data], allowed) == data / "film.png"
    assert resolve_image(str(data / "film.png"), [data], allowed) == data / "film.png"
    for crafted in (str(outside / "film.png"), "../outside/film.png", "link.png", "/etc/passwd", "/etc",
                    "/proc/self/environ", str(data)):
        assert resolve_image(crafted, [data], allowed) is None, crafted
        g = gallery_item("false positive", crafted, 0, 0.9, [data], allowed=allowed)
        assert g.image_png is None and g.note == "image file not found", crafted  # same words as a missing file
    missing = gallery_item("false positive", "nope.png", 0, 0.9, [data], allowed=allowed)
    assert missing.note == "image file not found"
    # without a fence (the CLI reading its own run) the file outside is still found
    assert resolve_image(str(outside / "film.png"), [data]) == outside / "film.png"
