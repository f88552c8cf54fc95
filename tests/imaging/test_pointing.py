"""Localisation measures: box masks, energy share and pointing hits by hand, the boxed adult films by
split part on the real NIH manifest, and one real film through ``localise``."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from cxr_model.cli import main
from cxr_model.imaging.pointing import (
    best_pair, box_area_fraction, box_mask, boxed_films, energy_share, localise, pointing_hit, summarise,
)
from cxr_model.settings import PROJECT_ROOT
from tests.conftest import _need

V2_SPLITS = str(PROJECT_ROOT / "assets" / "models" / "cxr-pneumonia-resnet18-v2" / "splits.csv")


def test_box_mask_and_area_by_hand():
    m = box_mask([[2, 1, 3, 2], [4, 2, 2, 2]], 5, 8)  # x, y, w, h; two overlapping boxes
    assert m.sum() == 6 + 4 - 1 and m[1, 2] and m[3, 5] and not m[0, 0] and not m[1, 5]
    assert box_area_fraction([[0, 0, 4, 5]], 5, 8) == pytest.approx(0.5)


def test_energy_share_and_pointing_on_a_non_square_frame():
    cam = np.zeros((224, 224), np.float32)
    cam[:, 112:] = 1.0  # the right half of the squashed input
    # on a 300 x 900 original the right half is x >= 450, whatever the aspect ratio
    assert energy_share(cam, [[450, 0, 450, 300]], 300, 900) == pytest.approx(1.0, abs=0.01)
    assert energy_share(cam, [[0, 0, 450, 300]], 300, 900) == pytest.approx(0.0, abs=0.01)
    assert energy_share(cam, [[450, 0, 450, 150]], 300, 900) == pytest.approx(0.5, abs=0.01)
    assert np.isnan(energy_share(np.zeros((7, 7)), [[0, 0, 10, 10]], 20, 20))
    peak = np.zeros((224, 224), np.float32)
    peak[50, 180] = 1  # x = 180.5 * 900 / 224 = 725, y = 50.5 * 300 / 224 = 68
    assert pointing_hit(peak, [[700, 60, 40, 20]], 300, 900)
    assert not pointing_hit(peak, [[600, 60, 40, 20]], 300, 900)


def test_boxed_films_follow_the_split_by_patient(settings):
    nih = _need(settings.nih_adult_dir, "NIH adult films")
    films = boxed_films(nih, V2_SPLITS)
    with open(nih / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    boxed = {r["path"]: r for r in rows if json.loads(r["boxes_xywh"])}
    assert sum(len(v) for v in films.values()) == len(boxed)
    patients = {part: {boxed[f"images/{p.name}"]["patient_id"] for p, _ in v} for part, v in films.items()}
    assert not patients["val"] & patients["test"] and not patients["train"] & (patients["val"] | patients["test"])
    assert {"val", "test"} <= set(films) and "unsplit" not in films


def test_localise_scores_a_real_boxed_film_per_pair(settings, cxr_bundle):
    nih = _need(settings.nih_adult_dir, "NIH adult films")
    film = boxed_films(nih, V2_SPLITS)["val"][:1]
    pairs = [("GradCAM", "layer4"), ("EigenCAM", "layer3")]
    rows = localise(cxr_bundle, film, pairs)
    assert [(r["method"], r["layer"]) for r in rows] == pairs
    for r in rows:
        assert isinstance(r["hit"], bool) and 0 <= r["energy"] <= 1 and 0 < r["box_fraction"] < 1
    table = summarise(rows)
    assert [t["n"] for t in table] == [1, 1] and best_pair(table) in table


def test_summary_counts_flat_maps_as_no_energy_in_the_boxes():
    rows = [{"method": "M", "layer": "l", "hit": h, "energy": e, "box_fraction": f}
            for h, e, f in ((True, 0.6, 0.1), (False, float("nan"), 0.2), (False, 0.3, 0.3))]
    (t,) = summarise(rows)
    assert (t["n"], t["hits"], t["n_flat"]) == (3, 1, 1)
    assert t["pointing"] == pytest.approx(1 / 3) and t["energy"] == pytest.approx(0.3) and t["chance"] == pytest.approx(0.2)
    assert t["pointing_ci95"][0] < 1 / 3 < t["pointing_ci95"][1]


def test_best_pair_is_chosen_by_pointing_then_energy():
    table = [{"method": "A", "layer": "l4", "pointing": 0.5, "energy": 0.1},
             {"method": "B", "layer": "l3", "pointing": 0.5, "energy": 0.3},
             {"method": "C", "layer": "l2", "pointing": 0.4, "energy": 0.9}]
    assert best_pair(table)["method"] == "B"


def test_pointing_command_refuses_a_split_without_adults(capsys):
    children_only = PROJECT_ROOT / "assets" / "models" / "cxr-pneumonia-resnet18"  # 1.1.0: Kermany only
    assert main(["pointing", "--model-dir", str(children_only), "--splits", str(children_only / "splits.csv")]) == 2
    assert "no boxed adult film" in capsys.readouterr().err
    assert main(["pointing", "--splits", V2_SPLITS, "--methods", "MagicCAM"]) == 2
    assert "MagicCAM" in capsys.readouterr().err
