"""Model 2 pieces: the adult NIH listing, the patient split, the population mix and its threshold rule."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from cxr_model.imaging import data as D
from cxr_model.imaging.splits import read_splits, split_by_patient
from cxr_model.imaging.train_mixed import PopulationMixSampler
from cxr_model.imaging.transforms import SiteArtifacts, TrainTransform
from cxr_model.metrics import classification as M
from cxr_model.metrics.calibration import fit_platt
from cxr_model.metrics.classification import balanced_youden
from tests.conftest import _need

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


@pytest.fixture(scope="module")
def nih_dir(settings):
    return _need(settings.data_dir / "cxr" / "nih_adult", "NIH adult radiographs")


def test_nih_listing_reads_every_film_with_patient_groups(nih_dir):
    items = D.nih_items(nih_dir)
    assert len(items) == 765 and Counter(it.label for it in items) == {0: 479, 1: 286}
    assert len({it.group for it in items}) == 606
    assert all(it.path.exists() for it in items[:20])
    assert {it.extra["view"] for it in items} == {"PA", "AP"}


def test_patient_split_never_cuts_a_patient_even_with_both_labels(nih_dir):
    items = D.nih_items(nih_dir)
    parts = split_by_patient(items, FRACTIONS, seed=0)
    assert sum(len(v) for v in parts.values()) == len(items)
    where = defaultdict(set)
    for name, part in parts.items():
        for it in part:
            where[it.group].add(name)
    assert all(len(v) == 1 for v in where.values())
    labels = defaultdict(set)
    for it in items:
        labels[it.group].add(it.label)
    assert sum(len(v) == 2 for v in labels.values()) == 13  # patients with films of both labels (README)
    for part in parts.values():
        assert 0.30 < sum(it.label for it in part) / len(part) < 0.45  # 37 % pneumonia overall
    assert 0.12 < len(parts["test"]) / len(items) < 0.18
    assert [it.path for it in split_by_patient(items, FRACTIONS, seed=0)["val"]] == [it.path for it in parts["val"]]
    assert [it.path for it in split_by_patient(items, FRACTIONS, seed=1)["val"]] != [it.path for it in parts["val"]]


def test_read_splits_reproduces_the_bundled_kermany_parts(settings, kermany_dir):
    parts = read_splits(settings.cxr_model_dir / "splits.csv", kermany_dir)
    assert {k: len(v) for k, v in parts.items()} == {"train": 3652, "val": 782, "test": 782}
    assert all(it.path.exists() for it in parts["test"][:20])
    assert not {it.group for it in parts["train"]} & {it.group for it in parts["test"]}


def test_read_splits_keeps_only_child_rows_of_a_two_population_file(tmp_path):
    f = tmp_path / "splits.csv"
    f.write_text("path,label,split,population\ntrain/NORMAL/IM-0001-0001.jpeg,NORMAL,test,child\n"
                 "images/0001_000.jpg,PNEUMONIA,test,adult\n")
    parts = read_splits(f, tmp_path)
    assert [it.path.name for it in parts["test"]] == ["IM-0001-0001.jpeg"]


def test_mix_sampler_balances_populations_and_classes():
    # 100 children (75 % pneumonia) and 10 adults (3 pneumonia): per epoch 40 of each population
    pops = np.array([0] * 100 + [1] * 10)
    labels = np.array([1] * 75 + [0] * 25 + [1] * 3 + [0] * 7)
    s = PopulationMixSampler(pops, labels, per_pop=40, seed=0)
    idx = list(s)
    assert len(idx) == len(s) == 80
    c = Counter((int(pops[i]), int(labels[i])) for i in idx)
    assert c == {(0, 0): 20, (0, 1): 20, (1, 0): 20, (1, 1): 20}
    s.set_epoch(1)
    assert list(s) != idx


def test_mix_sampler_up_weights_adults_and_confirmed_labels():
    # 100 children, 40 adults; adults 0-9 (normal) and 20-29 (pneumonia) carry confirmed labels
    pops = np.array([0] * 100 + [1] * 40)
    labels = np.array([1] * 75 + [0] * 25 + [0] * 20 + [1] * 20)
    w = np.ones(140)
    w[100:110] = w[120:130] = 4.0
    s = PopulationMixSampler(pops, labels, per_pop={0: 20, 1: 400}, seed=0, weights=w)
    idx = np.array(list(s))
    assert len(idx) == len(s) == 420
    c = Counter((int(pops[i]), int(labels[i])) for i in idx)
    assert c == {(0, 0): 10, (0, 1): 10, (1, 0): 200, (1, 1): 200}
    adults = idx[pops[idx] == 1]
    share = np.isin(adults, np.r_[100:110, 120:130]).mean()
    assert 0.7 < share < 0.9  # expected 4 * 10 / (4 * 10 + 10) = 0.8; unweighted it would be 0.5
    assert len(list(PopulationMixSampler(pops, labels, per_pop=40, seed=0, weights=np.ones(140)))) == 80


def test_site_artifacts_change_pixels_but_keep_the_source_form():
    torch.manual_seed(0)
    src = torch.full((1, 224, 224), 100, dtype=torch.uint8)
    out = SiteArtifacts(p_jpeg=0.0, p_marker=1.0)(src)
    assert out.shape == src.shape and out.dtype == torch.uint8
    assert (out != src).sum() > 10  # a marker was burned in
    assert torch.equal(SiteArtifacts(p_jpeg=0.0, p_marker=0.0)(src), src)
    x = TrainTransform(224, site_augment=True)(src)
    assert x.shape == (1, 224, 224) and x.dtype == torch.float32
    assert TrainTransform(160).site is None  # 1.1.0's recipe is unchanged by default


def test_balanced_youden_weighs_populations_equally():
    # Group 0 (100 films) is separated at 0.5, group 1 (4 films) only above 0.7. Pooled Youden
    # follows group 0 and calls both of group 1's normals; the balanced rule serves group 1 too.
    y = np.array([0] * 50 + [1] * 50 + [0, 0, 1, 1])
    s = np.concatenate([np.linspace(0.1, 0.45, 50), np.linspace(0.55, 0.95, 50), [0.6, 0.7, 0.85, 0.9]])
    g = np.array([0] * 100 + [1] * 4)
    t = balanced_youden(y, s, g)
    assert 0.7 < t <= 0.85
    m = g == 1
    assert ((s[m] >= t) == (y[m] == 1)).all()
    assert M.youden_threshold(y, s) < 0.56


def test_weighted_platt_equals_repeating_the_films():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    lg = y * 2.0 - 1 + rng.normal(0, 1, 60)
    w = np.where(np.arange(60) < 20, 3.0, 1.0)
    rep = np.concatenate([np.repeat(lg[:20], 3), lg[20:]]), np.concatenate([np.repeat(y[:20], 3), y[20:]])
    a = fit_platt(y, lg, w)
    b = fit_platt(rep[1], rep[0], np.ones(len(rep[0])))
    assert a["a"] == pytest.approx(b["a"], abs=1e-4) and a["b"] == pytest.approx(b["b"], abs=1e-4)
