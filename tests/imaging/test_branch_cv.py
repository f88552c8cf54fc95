"""Cross-validation of the adult branch's recipe (``cxr-model adult-branch cv``) on real adult films.

The default bundle's branch is refitted fold by fold on a real subset of its adult training and
validation films (3 folds by patient, so the test stays short); the held-out films are scored by the
fold's head and their maps computed through the product's ``explain`` on a view of the shared network.
"""
from __future__ import annotations

import numpy as np
import pytest

from cxr_model.cli import main
from cxr_model.imaging.branch_cv import cross_validate, patient_folds
from cxr_model.imaging.card_op import render_op_card
from cxr_model.imaging.data import nih_items
from cxr_model.imaging.splits import split_items
from tests.conftest import _need


@pytest.fixture(scope="module")
def nih_dir(settings):
    return _need(settings.nih_adult_dir, "adult NIH films")


@pytest.fixture(scope="module")
def subset_cv(cxr_bundle, settings, kermany_dir, nih_dir):
    """3-fold CV of the default bundle's recipe on every 6th adult training and every 3rd validation film."""
    parts = {"train": split_items(cxr_bundle, kermany_dir, "train", "adult", nih_dir)[::6],
             "val": split_items(cxr_bundle, kermany_dir, "val", "adult", nih_dir)[::3]}
    return parts, cross_validate(cxr_bundle, kermany_dir, nih_dir, folds=3, parts=parts, log=lambda m: None)


def test_patient_folds_keep_every_patient_on_one_side_of_every_fold(nih_dir):
    items = nih_items(nih_dir)
    patients = [it.extra["patient_id"] for it in items]
    fold = patient_folds(patients, 5)
    by_patient = {}
    for p, f in zip(patients, fold):
        by_patient.setdefault(p, set()).add(int(f))
    assert all(len(f) == 1 for f in by_patient.values())
    assert len(set(patients)) < len(patients)  # the set has patients with several films: the grouping is tested
    sizes = np.bincount(fold)
    assert len(sizes) == 5 and sizes.min() >= 0.8 * sizes.max()


def test_every_film_is_scored_once_by_a_head_that_did_not_see_it_and_the_figures_beat_chance(subset_cv, nih_dir):
    parts, cv = subset_cv
    films = parts["train"] + parts["val"]
    boxed = {it.path.name for it in nih_items(nih_dir) if it.extra.get("boxes_xywh") not in (None, "", "[]")}
    assert cv["films"] == len(films) == sum(f["films"] for f in cv["per_fold"])
    assert cv["pneumonia"] == sum(it.label for it in films)
    assert cv["test_patients_read"] is False and cv["parts"] == ["train", "val"]
    assert cv["pointing"]["n"] == sum(it.path.name in boxed for it in films) > 5
    # real signal on held-out patients, from heads fitted on about 60 films each (full run: 0.796, 0.649)
    assert cv["auroc"] > 0.65
    assert cv["pointing"]["pointing"] > 2 * cv["pointing"]["chance"]
    assert (cv["map"]["method"], cv["map"]["layer"]) == ("HiResCAM", "layer4")  # the branch's shown map (explain.json)


def test_the_out_of_fold_platt_slope_is_fitted_on_the_held_out_logits_and_set_against_the_bundled_one(subset_cv, cxr_bundle):
    _, cv = subset_cv
    pl = cv["platt"]
    assert pl["a_bundled"] == cxr_bundle.meta["adult_branch"]["operating_point"]["per_population"]["adult"]["a"]
    # fold heads on ~60 films each rank the held-out films (AUROC > 0.65), so their logits call for a positive slope
    # on the bundled head's scale (full run: 2.73 against 3.06); a sign error, or logits on another scale, would leave it
    assert 0.2 < pl["a_out_of_fold"] / pl["a_bundled"] < 3
    assert pl["expected_slope"] == pytest.approx(pl["a_out_of_fold"] / pl["a_bundled"])


def test_the_card_states_the_cross_validated_figures_with_their_n(subset_cv, cxr_bundle):
    _, cv = subset_cv
    meta = {**cxr_bundle.meta, "adult_branch": {**cxr_bundle.meta["adult_branch"], "cross_validation": {**cv, "command": "CMD"}}}
    card = render_op_card(meta, None)
    pt = cv["pointing"]
    assert f"3 folds by patient over the {cv['films']} adult training and validation films" in card
    assert f"out-of-fold AUROC {cv['auroc']:.3f}" in card
    assert f"on {pt['hits']} of {pt['n']} held-out boxed films" in card and "`CMD`" in card
    assert f"gives slope {cv['platt']['a_out_of_fold']:.2f} against the bundled {cv['platt']['a_bundled']:.2f}" in card
    assert f"calibration slope of about {cv['platt']['expected_slope']:.2f}" in card


def test_a_bundle_without_a_branch_is_refused_by_name(settings, capsys):
    folder = settings.cxr_model_dir.parent / "cxr-pneumonia-resnet18-v2.1"
    assert main(["adult-branch", "cv", "--model-dir", str(folder)]) == 2
    assert f"{folder}: has no adult branch" in capsys.readouterr().err


def test_out_of_fold_cells_are_the_held_out_folds_heads_maps_and_input_map_resizes_them():
    import torch

    from cxr_model.imaging.branch_cv import DevFilms, fold_heads, input_map, out_of_fold_cells
    from cxr_model.imaging.branch_fit import film_logits

    rng = np.random.default_rng(0)
    n = 40
    y = np.r_[np.ones(20), np.zeros(20)].astype(int)
    maps = torch.from_numpy(rng.normal(size=(n, 8, 4, 4)).astype(np.float32) + y[:, None, None, None] * 0.5)
    dev = DevFilms([None] * n, maps, [(64, 64)] * n, y, [[] for _ in range(n)], np.zeros((n, 4, 4)),
                   [f"p{i // 2}" for i in range(n)])
    cells = out_of_fold_cells(dev, 4, 0.0, 20, None)
    expected = np.zeros(n)
    for held, head in fold_heads(dev, 4, 0.0, 20, None):  # deterministic: the same heads again
        expected[held] = film_logits(head, maps[held])
    assert cells.shape == (n, 4, 4) and np.allclose(cells.mean((1, 2)), expected, atol=1e-5)
    big = input_map(cells[0], 32)  # 4 x 4 cells -> 32 px: each cell covers 8 x 8 px
    r, c = np.unravel_index(np.argmax(cells[0]), (4, 4))
    pr, pc = np.unravel_index(np.argmax(big), big.shape)
    assert big.shape == (32, 32) and big.dtype == np.float32 and (pr // 8, pc // 8) == (r, c)  # the peak stays in its cell
