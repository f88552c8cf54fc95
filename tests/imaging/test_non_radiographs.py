"""The generated out-of-scope probes (blank frames, CT-/MR-like slices, lateral chests) are valid
contract images, and the bundled model's scope rule withholds them all (the issue's bar)."""
from __future__ import annotations

import numpy as np

from cxr_model.imaging.non_radiographs import scope_probes
import torch

from cxr_model.imaging.ood import gray_features, load_ood
from cxr_model.imaging.transforms import EvalTransform, to_source


def test_scope_probes_are_contract_images_of_every_kind():
    probes = scope_probes(seed=5, n_each=2)
    assert sorted({n.split("/")[0] for n, _ in probes}) == ["black", "ct", "lateral", "mr", "white"]
    for name, g in probes:
        assert g.dtype == np.float32 and g.ndim == 2 and np.isfinite(g).all() and 0 <= g.min() <= g.max() <= 1, name
    assert len({n for n, _ in probes}) == len(probes)
    assert not np.array_equal(scope_probes(seed=5)[2][1], scope_probes(seed=6)[2][1])  # the seed matters


def test_bundled_ood_check_withholds_the_scope_probes(cxr_bundle):
    ood = load_ood(cxr_bundle)
    probes = scope_probes(seed=11, n_each=3)  # not the seed any fit or benchmark used
    images = [g for _, g in probes]
    x = EvalTransform(cxr_bundle.img_size)(torch.stack([to_source(g) for g in images]))
    verdicts = ood.verdicts(gray_features(cxr_bundle, images), x)  # the one scope rule, image check included
    assert [n for (n, _), (_, out, _) in zip(probes, verdicts) if not out] == []
