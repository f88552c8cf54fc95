"""The adults' high-resolution branch (issue 10: adults need resolution; maps that point at the lungs).

A bundle whose metadata has ``adult_branch`` carries a second view of the same network: the film
read at the branch's size, a per-cell head, the mean of the cells as the logit. These tests build
such a bundle on disk (seeded random backbone, random head), then check the route (adults on the
branch, everyone else on the bundle), that the branch shares the bundle's modules and lock, that
its Grad-CAM is its cell-logit map, that an altered head is refused, and, on real boxed adult
films, that the box loss of the fit is what moves the map into the radiologists' boxes.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cxr_model.imaging.branch import BRANCH_WEIGHTS, BranchHead
from cxr_model.imaging.branch_fit import box_grid, feature_maps, spatial_prior, train_head
from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.explain import explain
from cxr_model.imaging.io import read_image
from cxr_model.imaging.network import build_model
from cxr_model.imaging.predict import predict_batch, predict_source
from cxr_model.imaging.transforms import model_input
from cxr_model.registry import BundleError, save_bundle, sha256_file
from tests.conftest import _need
from tests.imaging.synthetic import png_bytes

SIZE = 256  # branch input in these tests: layer4 is 8 x 8 (448 in the bundle: 14 x 14)
MAP = {"a": 1.3, "b": -0.2, "centre_logit": 0.2 / 1.3}


@pytest.fixture(scope="module")
def branch_bundle_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("branch_bundle")
    meta = {"task": "cxr-pneumonia", "name": "tiny-branch", "version": "0.0.1", "architecture": "resnet18",
            "input": {"img_size": 224, "source_size": 224}, "calibration": {"a": 1.0, "b": 0.0},
            "threshold": {"value": 0.5},
            "operating_point": {"threshold": 0.5, "per_population": {"child": {"a": 1.0, "b": 0.0, "centre_logit": 0.0},
                                                                    "adult": {"a": 1.0, "b": 0.0, "centre_logit": 0.0}},
                                "pooled": {"a": 1.0, "b": 0.0, "centre_logit": 0.0}}}
    save_bundle(d, build_model("resnet18").eval().state_dict(), meta)
    head = BranchHead()
    with torch.no_grad():
        head.linear.weight.normal_(0, 0.05)
        head.mu.normal_(0, 0.1)
        head.sd.uniform_(0.5, 1.5)
    torch.save(head.state_dict(), d / BRANCH_WEIGHTS)
    meta = json.loads((d / "metadata.json").read_text())
    meta["adult_branch"] = {"file": BRANCH_WEIGHTS, "sha256": sha256_file(d / BRANCH_WEIGHTS), "img_size": SIZE,
                            "layer": "layer4", "cells": SIZE // 32,
                            "operating_point": {"threshold": 0.5, "per_population": {"adult": MAP}, "pooled": MAP}}
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


@pytest.fixture()
def film(tmp_path):
    rng = np.random.default_rng(5)
    g = np.clip(0.4 + 0.2 * rng.standard_normal((300, 260)), 0, 1)
    path = tmp_path / "film.png"
    path.write_bytes(png_bytes(g))
    return path


def test_adults_get_the_branch_everyone_else_the_bundle_and_both_share_one_network(branch_bundle_dir):
    b = load_cxr_bundle(branch_bundle_dir, device="cpu")
    assert b.branch is not None and b.branch.img_size == SIZE and b.img_size == 224
    assert b.scorer("adult") is b.branch
    assert b.scorer("child") is b and b.scorer(None) is b
    assert b.branch.model.layer4 is b.model.layer4  # the same modules: nothing copied
    assert b.branch.model._lock is b.model._lock  # and one lock for their hooks
    assert b.branch.operating_point["per_population"]["adult"] == MAP
    assert b.branch.branch is None and "population_model" not in b.branch.meta


def test_the_branchs_gradcam_is_its_cell_logit_map_and_its_probability_the_cells_mean(branch_bundle_dir):
    b = load_cxr_bundle(branch_bundle_dir, device="cpu")
    x = torch.randn(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    e = explain(b.branch, x, "GradCAM", "layer4", population="adult")
    with torch.no_grad(), b.branch.model.hold() as net:
        cells = net.cell_logits(x)[0].numpy()
    n = cells.shape[0]
    r, c = np.unravel_index(np.argmax(e.cam), e.cam.shape)
    assert np.unravel_index(np.argmax(cells), cells.shape) == (r * n // SIZE, c * n // SIZE)
    expected = 1 / (1 + np.exp(-(MAP["a"] * cells.mean() + MAP["b"])))
    assert e.probability == pytest.approx(expected, abs=1e-5)


def test_predict_scores_a_declared_adult_on_the_branch_and_a_child_on_the_bundle(branch_bundle_dir, film):
    b = load_cxr_bundle(branch_bundle_dir, device="cpu")
    gray = read_image(film)
    adult = predict_source(b, film, population="adult")
    child = predict_source(b, film, population="child")
    assert adult.population == "adult" and child.population == "child"
    assert adult.probability == pytest.approx(float(predict_batch(b.branch, model_input(gray, SIZE)[None], "adult")[0]), abs=1e-6)
    assert child.probability == pytest.approx(float(predict_batch(b, model_input(gray, 224)[None], "child")[0]), abs=1e-6)
    assert abs(adult.probability - child.probability) > 1e-4


def test_an_altered_branch_head_is_refused_naming_the_file(branch_bundle_dir, tmp_path):
    import shutil

    d = tmp_path / "altered"
    shutil.copytree(branch_bundle_dir, d)
    head = torch.load(d / BRANCH_WEIGHTS, weights_only=True)
    head["linear.bias"] += 1.0
    torch.save(head, d / BRANCH_WEIGHTS)
    with pytest.raises(BundleError, match=BRANCH_WEIGHTS):
        load_cxr_bundle(d, device="cpu")


@pytest.fixture(scope="module")
def prior_bundle_dir(branch_bundle_dir, tmp_path_factory):
    """The branch bundle with a spatial prior in its head: cells of the left half count 4 x the right half."""
    import shutil

    d = tmp_path_factory.mktemp("prior_bundle")
    shutil.copytree(branch_bundle_dir, d, dirs_exist_ok=True)
    state = torch.load(d / BRANCH_WEIGHTS, weights_only=True)
    n = SIZE // 32
    prior = torch.ones(n, n)
    prior[:, : n // 2] = 4.0
    state["prior"] = prior / prior.mean()
    torch.save(state, d / BRANCH_WEIGHTS)
    meta = json.loads((d / "metadata.json").read_text())
    meta["adult_branch"]["sha256"] = sha256_file(d / BRANCH_WEIGHTS)
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def test_with_a_prior_the_film_logit_is_the_mean_contribution_and_hirescam_is_that_map(prior_bundle_dir):
    """HiResCAM on layer4 is gradient x activation per cell: prior x (cell logit + a constant K that
    the standardisation and bias fix), so its peak is the contributions' peak once K is added."""
    b = load_cxr_bundle(prior_bundle_dir, device="cpu")
    with b.branch.model.hold() as net:
        head = net.head
        x = torch.randn(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            fmap = net.feature_map(x)
            own = head.cell_logits(fmap)[0]
            contrib = net.cell_logits(x)[0]
            logit = net(x).item()
    assert torch.allclose(contrib, own * head.prior, atol=1e-5)  # the prior weights each cell
    assert logit == pytest.approx(contrib.mean().item(), abs=1e-5)
    assert not torch.allclose(contrib.mean(), own.mean(), atol=1e-4)  # and it changes the call
    k = float((-head.linear.bias + (head.linear.weight[0] / head.sd * head.mu).sum()).detach())
    expected = (head.prior * (own + k)).clamp(min=0).numpy()
    e = explain(b.branch, x, "HiResCAM", "layer4", population="adult")
    n = expected.shape[0]
    r, c = np.unravel_index(np.argmax(e.cam), e.cam.shape)
    assert np.unravel_index(np.argmax(expected), expected.shape) == (r * n // SIZE, c * n // SIZE)
    assert e.probability == pytest.approx(1 / (1 + np.exp(-(MAP["a"] * logit + MAP["b"]))), abs=1e-5)


def test_a_head_without_a_prior_counts_every_cell_alike(branch_bundle_dir):
    b = load_cxr_bundle(branch_bundle_dir, device="cpu")
    with b.branch.model.hold() as net:
        assert net.head.prior.numel() == 0
        x = torch.randn(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
        with torch.no_grad():
            assert torch.equal(net.cell_logits(x), net.head.cell_logits(net.feature_map(x)))


def test_the_spatial_prior_is_where_the_boxes_lie_with_a_floor_and_mean_one():
    masks = np.zeros((3, 8, 8), np.float32)
    masks[0, 2:4, 1:3] = 1  # two boxed films over the same cells, one film without boxes
    masks[1, 2:4, 1:3] = 1
    p = spatial_prior(masks, sigma=0.5, floor=0.25).numpy()
    assert p.mean() == pytest.approx(1.0, abs=1e-5)
    assert np.unravel_index(np.argmax(p), p.shape)[0] in (2, 3) and np.unravel_index(np.argmax(p), p.shape)[1] in (1, 2)
    assert p.min() / p.max() == pytest.approx(0.25, abs=1e-5)  # far cells keep the floor, not zero
    with pytest.raises(ValueError, match="boxes"):
        spatial_prior(np.zeros((2, 8, 8), np.float32), 1.0, 0.3)


def test_box_grid_marks_the_cells_a_box_covers():
    g = box_grid([[0, 0, 128, 128]], (512, 512), 4)  # the top-left cell of a 4 x 4 grid
    assert g[0, 0] == pytest.approx(1) and g[0, 1] == pytest.approx(0) and g[1, 0] == pytest.approx(0)


def test_the_box_loss_moves_the_map_into_the_radiologists_boxes(cxr_bundle, settings):
    """On real boxed adult films (and as many normal ones): the head trained with the box loss puts the
    peak cell inside the boxes on most of them; the same head without it does so far less often."""
    from cxr_model.imaging.data import nih_items

    items = nih_items(_need(settings.nih_adult_dir, "NIH adult films"))
    boxed = [it for it in items if json.loads(it.extra["boxes_xywh"] or "[]")][:24]
    normal = [it for it in items if it.label == 0][:24]
    films = boxed + normal
    maps, shapes = feature_maps(cxr_bundle, [it.path for it in films], 224)
    masks = np.stack([box_grid(json.loads(it.extra["boxes_xywh"] or "[]"), s, maps.shape[-1]) for it, s in zip(films, shapes)])
    y = np.array([it.label for it in films])

    def pointing(head):
        with torch.no_grad():
            cells = head(maps[: len(boxed)].float()).flatten(1).numpy()
        return float(np.mean([masks[i].ravel()[np.argmax(cells[i])] > 0 for i in range(len(boxed))]))

    with_boxes = pointing(train_head(maps, y, masks, box_weight=1.0, epochs=150))
    without = pointing(train_head(maps, y, masks, box_weight=0.0, epochs=150))
    assert with_boxes >= 0.6
    assert with_boxes >= without + 0.2
