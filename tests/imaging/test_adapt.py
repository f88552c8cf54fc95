"""Site adaptation (BN re-estimation): a copy is adapted, profiles round-trip, bad profiles refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from cxr_model.imaging.adapt import MIN_FILMS, adapt_batchnorm, load_site_profile, save_site_profile
from cxr_model.imaging.data import kermany_items, load_sources
from cxr_model.imaging.predict import predict_batch
from cxr_model.imaging.shift import SHIFTS
from cxr_model.imaging.transforms import EvalTransform
from cxr_model.registry import BundleError


@pytest.fixture(scope="module")
def site_films(kermany_dir):
    # the 16 official val films (another uploader), darkened and blurred: one "site"
    src, _ = load_sources(kermany_items(kermany_dir, "val"))
    return torch.stack([SHIFTS["blur (sigma 1.5)"](SHIFTS["darker (exposure -30 %)"](s)) for s in src])


def _bn_means(bundle):
    with bundle.model.hold() as raw:
        return [m.running_mean.clone() for m in raw.modules() if isinstance(m, nn.BatchNorm2d)]


def test_adaptation_changes_a_copy_and_never_the_shared_model(cxr_bundle, site_films):
    before = _bn_means(cxr_bundle)
    x = EvalTransform(cxr_bundle.img_size)(site_films)
    p0 = predict_batch(cxr_bundle, x)
    adapted = adapt_batchnorm(cxr_bundle, site_films, batch_size=8)
    assert all(torch.equal(a, b) for a, b in zip(before, _bn_means(cxr_bundle)))
    assert any(not torch.allclose(a, b) for a, b in zip(before, _bn_means(adapted)))
    assert np.array_equal(predict_batch(cxr_bundle, x), p0)
    assert adapted.meta["site_profile"]["n_films"] == len(site_films)
    assert not np.allclose(predict_batch(adapted, x), p0)


def test_statistics_do_not_depend_on_the_order_of_the_films(cxr_bundle, site_films):
    a = adapt_batchnorm(cxr_bundle, site_films, batch_size=16)
    b = adapt_batchnorm(cxr_bundle, site_films.flip(0), batch_size=16)
    for x, y in zip(_bn_means(a), _bn_means(b)):
        assert torch.allclose(x, y, atol=1e-5)


def test_a_saved_profile_loads_back_to_the_same_predictions(cxr_bundle, site_films, tmp_path):
    adapted = adapt_batchnorm(cxr_bundle, site_films)
    save_site_profile(adapted, tmp_path, "ward-3")
    again = load_site_profile(cxr_bundle, tmp_path, "ward-3")
    x = EvalTransform(cxr_bundle.img_size)(site_films[:4])
    assert np.allclose(predict_batch(again, x), predict_batch(adapted, x), atol=1e-6)
    assert again.meta["site_profile"]["name"] == "ward-3"


def test_profiles_for_other_weights_too_few_films_and_odd_names_are_refused(cxr_bundle, site_films, tmp_path):
    with pytest.raises(ValueError, match=f"at least {MIN_FILMS}"):
        adapt_batchnorm(cxr_bundle, site_films[:3])
    adapted = adapt_batchnorm(cxr_bundle, site_films)
    with pytest.raises(ValueError, match="site name"):
        save_site_profile(adapted, tmp_path, "../evil")
    save_site_profile(adapted, tmp_path, "site-a")
    info = json.loads((tmp_path / "site-a.json").read_text())
    (tmp_path / "site-a.json").write_text(json.dumps(dict(info, model_sha256="0" * 64)))
    with pytest.raises(BundleError, match="other weights"):
        load_site_profile(cxr_bundle, tmp_path, "site-a")
    with pytest.raises(BundleError, match="no such site profile"):
        load_site_profile(cxr_bundle, tmp_path, "nowhere")
