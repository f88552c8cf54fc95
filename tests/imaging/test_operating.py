"""The population-aware operating point: ages, population model, centred maps, one threshold."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cxr_model.imaging import operating as OP
from cxr_model.metrics import classification as M


@pytest.mark.parametrize("age,expected", [
    ("045Y", "adult"), ("018Y", "adult"), ("017Y", "child"), ("006M", "child"), ("030W", "child"), ("200D", "child"),
    (17.9, "child"), (18, "adult"), ("", None), ("abc", None), (None, None), ("999Y", None), (float("nan"), None),
])
def test_population_from_age_reads_dicom_age_strings_and_numbers(age, expected):
    assert OP.population_from_age(age) == expected


def test_population_model_separates_two_feature_clouds_and_round_trips_through_json():
    rng = np.random.default_rng(0)
    f = np.r_[rng.normal(0, 1, (200, 8)), rng.normal(0, 1, (200, 8)) + np.r_[3.0, np.zeros(7)]]
    adult = np.r_[np.zeros(200), np.ones(200)]
    m = OP.fit_population_model(f, adult)
    p = m.p_adult(f)
    assert ((p > 0.5) == adult).mean() > 0.95
    again = OP.PopulationModel.from_meta(m.to_meta())
    assert np.allclose(again.p_adult(f), p, atol=1e-4)


def test_assign_prefers_the_declared_population_and_leaves_uncertain_films_to_the_pooled_map():
    p = np.array([0.02, 0.5, 0.97, 0.97])
    assert OP.assign(p) == ["child", None, "adult", "adult"]
    assert OP.assign(p, ["adult", "child", None, "child"]) == ["adult", "child", "adult", "child"]


def _population(rng, n, centre, spread=1.0, prevalence=0.5):
    y = (rng.random(n) < prevalence).astype(int)
    return y, centre + np.where(y == 1, 1.5, -1.5) * spread + rng.normal(0, 1, n)


def test_each_population_meets_the_one_threshold_at_its_own_youden_point():
    # Children score high (their normals sit where adults' pneumonias do); one raw threshold
    # cannot serve both, the centred maps can.
    rng = np.random.default_rng(1)
    val = {"child": _population(rng, 600, 3.0, prevalence=0.74), "adult": _population(rng, 300, -1.0, prevalence=0.36)}
    shifted = {p: {"s": lg + 0.2} for p, (_, lg) in val.items()}
    op = OP.choose_operating_point(val, shifted)
    assert op["threshold"] == 0.5
    for pop, (y, lg) in val.items():
        prob = OP.calibrate(op, lg, [pop] * len(lg))
        t_own = M.youden_threshold(np.r_[y, y], np.r_[lg, lg + 0.2])
        # the centre is that population's Youden point: 0.5 there, monotone in the logit
        assert OP.calibrate(op, np.array([t_own]), [pop])[0] == pytest.approx(0.5, abs=1e-9)
        j_centred = M.compute_threshold_metrics(y, prob, 0.5)
        assert j_centred["sensitivity"] + j_centred["specificity"] - 1 > 0.7
    raw_child_point = op["per_population"]["child"]["centre_logit"]
    y, lg = val["adult"]
    wrong = M.compute_threshold_metrics(y, lg, raw_child_point)
    assert wrong["sensitivity"] < 0.3  # the children's raw point would miss most adult pneumonias
    assert set(op["movement"]["child"]) == {"clean", "s"}


def test_calibrate_agrees_for_numpy_and_torch_and_keeps_the_graph():
    op = {"per_population": {"child": {"a": 1.5, "b": -3.0}, "adult": {"a": 0.8, "b": 0.4}}, "pooled": {"a": 1.0, "b": -1.0}}
    z = np.array([0.5, 2.0, -1.0])
    pops = ["child", "adult", None]
    expected = 1 / (1 + np.exp(-np.array([1.5 * 0.5 - 3.0, 0.8 * 2.0 + 0.4, -1.0 - 1.0])))
    assert np.allclose(OP.calibrate(op, z, pops), expected)
    t = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    out = OP.calibrate(op, t, pops)
    assert out.requires_grad and np.allclose(out.detach().numpy(), expected, atol=1e-6)


def test_operating_point_fit_names_a_missing_bundle(tmp_path, capsys):
    from cxr_model.cli import main

    assert main(["operating-point", "fit", "--model-dir", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_default_bundle_carries_a_population_aware_operating_point_that_meets_its_threshold(cxr_bundle):
    op = cxr_bundle.operating_point
    if op is None:
        pytest.skip(f"{cxr_bundle.model_id} has one population")
    assert cxr_bundle.threshold == op["threshold"] == 0.5
    for pop, m in op["per_population"].items():
        p = cxr_bundle.probability(torch.tensor([m["centre_logit"]]), population=pop)
        assert float(p) == pytest.approx(0.5, abs=1e-6), pop
    # children and adults need different raw points (the reason for the maps)
    assert abs(op["per_population"]["child"]["centre_logit"] - op["per_population"]["adult"]["centre_logit"]) > 0.5
    acc = cxr_bundle.meta["population_model"]["accuracy"]
    for part in ("child_test", "adult_test"):
        assert acc[part]["correct"] / acc[part]["n"] >= 0.9
