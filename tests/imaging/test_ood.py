"""OOD check on the bundled model's stored statistics: non-radiographs flagged, radiographs not."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from cxr_model.cli import build_parser
from cxr_model.imaging.data import load_sources
from cxr_model.imaging.non_radiographs import non_radiographs
from cxr_model.imaging.ood import OodError, fit_gaussian, gray_features, load_ood, source_features
from cxr_model.imaging.splits import split_items


@pytest.fixture(scope="module")
def ood(cxr_bundle):
    try:
        return load_ood(cxr_bundle)
    except OodError as exc:
        pytest.fail(f"{exc}")


def test_generated_non_radiographs_score_above_the_threshold(cxr_bundle, ood):
    # A seed not used when the statistics were fitted and evaluated (seed 0).
    others = [(n, g) for n, g in non_radiographs(seed=123, n_each=3) if not n.startswith("photo/")]
    scores = ood.score(gray_features(cxr_bundle, [g for _, g in others]))
    flagged = {n for (n, _), s in zip(others, scores) if s > ood.threshold}
    assert len(flagged) / len(others) >= 0.9, sorted({n for n, _ in others} - flagged)


def test_photographs_score_above_most_validation_radiographs(cxr_bundle, ood, kermany_dir):
    photos = [g for n, g in non_radiographs(n_each=0) if n.startswith("photo/")]
    s_photo = ood.score(gray_features(cxr_bundle, photos))
    assert np.mean(s_photo > ood.threshold) >= 0.8


def test_validation_radiographs_mostly_below_the_threshold(cxr_bundle, ood, kermany_dir):
    items = split_items(cxr_bundle, kermany_dir, "val")[:200]
    src, errors = load_sources(items)
    assert not errors
    scores = ood.score(source_features(cxr_bundle, src))
    assert np.mean(scores <= ood.threshold) >= 0.95


def test_mahalanobis_of_the_mean_is_zero_and_grows_with_distance():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 8)).astype(np.float32)
    mean, precision, _ = fit_gaussian(f)
    from cxr_model.imaging.ood import OodModel

    m = OodModel(mean, precision, 3.0)
    s = m.score(np.stack([mean.numpy(), mean.numpy() + 1, mean.numpy() + 5]))
    assert s[0] == pytest.approx(0, abs=1e-3) and s[0] < s[1] < s[2]


def test_stale_statistics_are_refused(cxr_bundle, tmp_path):
    import shutil

    other = copy.copy(cxr_bundle)
    other.meta = dict(cxr_bundle.meta, sha256="0" * 64)
    other.path = tmp_path
    for f in ("ood.pt", "ood.json"):
        shutil.copy(cxr_bundle.path / f, tmp_path / f)
    with pytest.raises(OodError, match="other weights"):
        load_ood(other)
    assert torch.load(tmp_path / "ood.pt", weights_only=True)["mean"].ndim == 1


def test_ood_fit_is_a_subcommand_of_the_cli_and_the_missing_statistics_name_it(cxr_bundle, tmp_path):
    args = build_parser().parse_args(["ood", "fit", "--max-train", "50", "--model-dir", str(tmp_path)])
    assert (args.max_train, args.model_dir, args.func.__name__) == (50, str(tmp_path), "_ood_fit")
    assert build_parser().parse_args(["ood", "fit"]).max_train == 1500
    other = copy.copy(cxr_bundle)
    other.path = tmp_path  # a bundle copy without ood.pt
    with pytest.raises(OodError, match="cxr-model ood fit"):
        load_ood(other)
