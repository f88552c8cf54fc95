"""Grad-CAM invariants (after pytorch-grad-cam's own tests): shape, no mutation, flat memory, hooks released."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cxr_model.imaging.explain import (
    METHODS, SLOW_METHODS, compute_cam, explain, faithfulness, forward_passes, overlay,
)
from cxr_model.imaging.pointing import box_area_fraction, cam_peak, pointing_hit
from cxr_model.imaging.predict import predict_batch
from cxr_model.imaging.transforms import load_tensor


@pytest.fixture(scope="module")
def x(kermany_dir, cxr_bundle):
    f = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
    return load_tensor(f, cxr_bundle.img_size)


@pytest.fixture(scope="module")
def small(x):
    """The same radiograph at 64 x 64: the network is fully convolutional, and the slow checks
    (ScoreCAM, 50 calls, ROAD) test invariants that do not depend on the input size."""
    return torch.nn.functional.interpolate(x.unsqueeze(0), size=(64, 64), mode="bilinear", antialias=True)[0]


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("method", [m for m in METHODS if m not in SLOW_METHODS])
def test_cam_has_input_shape_in_unit_range_and_leaves_input_and_model_untouched(cxr_bundle, x, method):
    before = x.clone()
    params = {n: p.detach().clone() for n, p in cxr_bundle.model.named_parameters()}
    grads_req = [p.requires_grad for p in cxr_bundle.model.parameters()]
    cam = compute_cam(cxr_bundle, x, method)
    assert cam.shape == tuple(x.shape[-2:]) and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert torch.equal(x, before)
    assert not cxr_bundle.model.training
    assert [p.requires_grad for p in cxr_bundle.model.parameters()] == grads_req
    assert all(p.grad is None for p in cxr_bundle.model.parameters())
    assert all(torch.equal(p, params[n]) for n, p in cxr_bundle.model.named_parameters())
    assert _hooks(cxr_bundle.model) == 0


def test_scorecam_one_case_has_input_shape(cxr_bundle, small):
    # ScoreCAM is one forward per target-layer channel: slow on CPU, so one small case only.
    cam = compute_cam(cxr_bundle, small.unsqueeze(0), "ScoreCAM")
    assert cam.shape == tuple(small.shape[-2:])
    assert _hooks(cxr_bundle.model) == 0


def test_explain_probability_equals_the_prediction_path(cxr_bundle, x):
    e = explain(cxr_bundle, x, "GradCAM")
    assert e.probability == pytest.approx(float(predict_batch(cxr_bundle, x.unsqueeze(0))[0]), abs=1e-5)
    assert e.features.ndim == 1 and e.features.size > 0


def test_unknown_method_and_wrong_shape_are_clear_errors(cxr_bundle, x):
    with pytest.raises(ValueError, match="unknown CAM method"):
        compute_cam(cxr_bundle, x, "NoSuchCAM")
    with pytest.raises(ValueError, match="expected a"):
        compute_cam(cxr_bundle, torch.zeros(3, 32, 32), "GradCAM")


def test_memory_flat_over_50_cam_calls(cxr_bundle, small):
    for _ in range(5):  # warm-up: allocator pools, lazy imports, parameter-gradient buffers
        compute_cam(cxr_bundle, small, "GradCAM")
    base = _rss()
    for _ in range(50):
        compute_cam(cxr_bundle, small, "GradCAM")
    grown = _rss() - base
    # One forward's retained graph at 64 px is a few MB; leaking it (or the hooks' activations)
    # on each call would add well over 100 MB in 50 calls. 40 MB is slack for allocator noise.
    assert grown < 40_000_000, f"RSS grew {grown / 1e6:.0f} MB over 50 CAM calls"
    assert _hooks(cxr_bundle.model) == 0


def test_overlay_is_rgb_at_image_size_and_alpha_zero_is_the_image():
    gray = np.linspace(0, 1, 300 * 200, dtype=np.float32).reshape(300, 200)
    cam = np.zeros((7, 7), np.float32)
    cam[3, 3] = 1
    out = overlay(gray, cam, 0.5)
    assert out.shape == (300, 200, 3) and out.dtype == np.uint8
    plain = overlay(gray, cam, 0.0)
    assert np.array_equal(plain[..., 0], np.uint8(np.rint(gray * 255)))
    assert not np.array_equal(out, plain)


def test_faithfulness_is_a_bounded_probability_difference_with_a_meaning(cxr_bundle, small):
    cam = compute_cam(cxr_bundle, small, "GradCAM++")
    # a flat map here would make the assertions below vacuous: it is a failure, not a skip
    assert float(cam.max() - cam.min()) > 1e-6, "GradCAM++ gave a flat map on a real radiograph"
    f = faithfulness(cxr_bundle, small, cam)
    assert f.score == f.score and -0.5 <= f.score <= 0.5
    assert "P(pneumonia)" in f.meaning
    assert faithfulness(cxr_bundle, small, cam).score == f.score  # seeded: reproducible
    flat = faithfulness(cxr_bundle, small, np.zeros_like(cam))
    assert flat.score != flat.score and "flat" in flat.meaning


def test_pointing_game_maps_the_squashed_peak_back_to_original_pixels():
    cam = np.zeros((10, 10), np.float32)
    cam[2, 7] = 1  # row 2, column 7 of a 10x10 map over a 1000 (h) x 2000 (w) image
    assert cam_peak(cam, 1000, 2000) == (1500.0, 250.0)
    assert pointing_hit(cam, [[1400, 200, 200, 100]], 1000, 2000)
    assert not pointing_hit(cam, [[0, 0, 100, 100]], 1000, 2000)
    assert box_area_fraction([[0, 0, 500, 500], [250, 250, 500, 500]], 1000, 1000) == pytest.approx(0.4375)


def test_on_forward_counts_every_pass_and_cancelling_scorecam_releases_hooks_and_lock(cxr_bundle, small):
    calls = []
    explain(cxr_bundle, small, "GradCAM", on_forward=lambda: calls.append(1))
    assert len(calls) == forward_passes(cxr_bundle, "GradCAM") == 1

    class Stop(Exception):
        pass

    def stop_at_third():
        calls.append(1)
        if len(calls) == 4:  # the 1 above + 3 of ScoreCAM
            raise Stop

    with pytest.raises(Stop):
        explain(cxr_bundle, small, "ScoreCAM", on_forward=stop_at_third)
    assert forward_passes(cxr_bundle, "ScoreCAM") > 3  # it was stopped part way
    with cxr_bundle.model.hold() as net:  # the lock is free again, and no hook was left behind
        assert _hooks(net) == 0 and all(p.grad is None for p in net.parameters())
