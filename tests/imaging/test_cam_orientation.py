"""The CAM machinery points where the model looks, in the read image's pixel frame (issue 10 item 5).

A tiny network whose pneumonia logit rises with local brightness is run through the whole path
(PNG file -> read_image -> to_source squash -> EvalTransform -> explain -> cam_peak / peak_pixel /
pointing_hit) on a generated non-square film with one bright blob off-centre. Every gradient CAM
must peak on the blob (not transposed, not mirrored, not in the squashed frame), and a network
whose logit *falls* with brightness must not point at it (the map is for the pneumonia logit,
with its sign). So the below-chance pointing of the bundled model is not a bug of this machinery.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.explain import explain
from cxr_model.imaging.explain_files import explain_file
from cxr_model.imaging.io import read_image
from cxr_model.imaging.pointing import cam_peak, pointing_hit
from cxr_model.imaging.transforms import EvalTransform, to_source
from tests.imaging.synthetic import png_bytes

H, W = 300, 500  # not square: the squash to 224 x 224 scales x and y differently
BLOB_X, BLOB_Y, BLOB_R = 390, 80, 22  # upper right: a transposed or mirrored map lands elsewhere
GRADIENT_METHODS = ["GradCAM", "GradCAM++", "HiResCAM", "XGradCAM", "LayerCAM"]


class BlobNet(nn.Module):
    """One 8 x 8 mean-brightness filter (224 -> 28 x 28 map), ReLU above a bias, mean pool, one logit.

    Named like a ResNet (``layer2..4``, ``fc``) so the package's CAM layers and hooks find it.
    """

    def __init__(self, sign: float = 1.0):
        super().__init__()
        conv = nn.Conv2d(1, 1, 8, stride=8)
        with torch.no_grad():
            conv.weight.fill_(1 / 64)
            conv.bias.fill_(-1.0)  # equalised input: the blob's ~1.7 passes, the dark background does not
        self.layer2 = nn.Sequential(nn.Identity())
        self.layer3 = nn.Sequential(nn.Identity())
        self.layer4 = nn.Sequential(conv, nn.ReLU())
        self.fc = nn.Linear(1, 1)
        with torch.no_grad():
            self.fc.weight.fill_(sign * 50.0)
            self.fc.bias.fill_(0.0)

    def forward(self, x):
        return self.fc(self.layer4(self.layer3(self.layer2(x))).mean((2, 3)))


def _bundle(sign: float, tmp_path) -> CxrBundle:
    meta = {"architecture": "resnet18", "input": {"img_size": 224}, "calibration": {"a": 1.0, "b": 0.0},
            "threshold": {"value": 0.5}, "name": "blobnet", "version": "0"}
    return CxrBundle(BlobNet(sign).eval(), meta, torch.device("cpu"), tmp_path)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    rng = np.random.default_rng(3)
    g = np.clip(0.25 + 0.05 * rng.standard_normal((H, W)), 0, 1)
    yy, xx = np.mgrid[0:H, 0:W]
    g[(yy - BLOB_Y) ** 2 + (xx - BLOB_X) ** 2 < BLOB_R ** 2] = 0.95
    path = tmp_path_factory.mktemp("blob") / "blob.png"
    path.write_bytes(png_bytes(g))
    return path


def _input(path, size=224):
    return EvalTransform(size)(to_source(read_image(path)))


@pytest.mark.parametrize("method", [*GRADIENT_METHODS, "EigenCAM"])
def test_the_map_peaks_on_the_blob_in_the_read_images_pixels(film, tmp_path, method):
    bundle = _bundle(1.0, tmp_path)
    e = explain(bundle, _input(film), method, "layer4")
    assert e.cam.shape == (224, 224)
    x, y = cam_peak(e.cam, H, W)
    assert abs(x - BLOB_X) <= BLOB_R and abs(y - BLOB_Y) <= BLOB_R, (method, x, y)
    box = [[BLOB_X - BLOB_R, BLOB_Y - BLOB_R, 2 * BLOB_R, 2 * BLOB_R]]
    mirrored = [[W - BLOB_X - BLOB_R, BLOB_Y - BLOB_R, 2 * BLOB_R, 2 * BLOB_R]]
    transposed = [[BLOB_Y - BLOB_R, BLOB_X - BLOB_R, 2 * BLOB_R, 2 * BLOB_R]]
    assert pointing_hit(e.cam, box, H, W)
    assert not pointing_hit(e.cam, mirrored, H, W) and not pointing_hit(e.cam, transposed, H, W)


def test_explain_file_reports_the_peak_in_the_files_pixels(film, tmp_path):
    r = explain_file(_bundle(1.0, tmp_path), film, "GradCAM", "layer4")
    assert (r.width, r.height) == (W, H)
    assert abs(r.peak_xy[0] - BLOB_X) <= BLOB_R and abs(r.peak_xy[1] - BLOB_Y) <= BLOB_R, r.peak_xy


@pytest.mark.parametrize("method", ["GradCAM", "HiResCAM", "XGradCAM"])
def test_a_logit_that_falls_with_the_blob_gets_no_map_on_it(film, tmp_path, method):
    """Grad-CAM keeps the regions that *raise* the target (ReLU of the gradient-weighted map): here none."""
    e = explain(_bundle(-1.0, tmp_path), _input(film), method, "layer4")
    assert e.logit < 0
    x, y = cam_peak(e.cam, H, W)
    assert float(e.cam.max()) == 0.0 or not (abs(x - BLOB_X) <= BLOB_R and abs(y - BLOB_Y) <= BLOB_R)


def test_eigencam_ignores_the_target_so_it_is_never_the_default(film, tmp_path):
    """EigenCAM draws the blob whether it raises or lowers the logit: not a map of the pneumonia logit."""
    from cxr_model.imaging.explain import CLASS_AGNOSTIC
    from cxr_model.imaging.pointing import best_pair

    down = explain(_bundle(-1.0, tmp_path), _input(film), "EigenCAM", "layer4")
    x, y = cam_peak(down.cam, H, W)
    assert down.logit < 0 and abs(x - BLOB_X) <= BLOB_R and abs(y - BLOB_Y) <= BLOB_R
    row = {"n": 14, "energy": 0.1}
    table = [{**row, "method": "EigenCAM", "layer": "layer4", "pointing": 0.2},
             {**row, "method": "LayerCAM", "layer": "layer2", "pointing": 0.1}]
    assert "EigenCAM" in CLASS_AGNOSTIC and best_pair(table)["method"] == "LayerCAM"
