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


@pytest.mark.parametrize("age,expected", [
    ("216M", "adult"), ("215M", "child"), ("940W", "adult"), ("939W", "child"), ("999D", "child"), ("6575D", None),  # DICOM AS has 3 digits: 999 days is the most it says
    ("18", "adult"), ("017", "child"), ("000D", "child"), (0, "child"), (130, "adult"), (131, None), (-1, None),
])
def test_age_units_convert_to_years_at_the_adult_boundary_and_a_newborn_is_a_child(age, expected):
    assert OP.population_from_age(age) == expected


def test_the_uncertain_band_edges_belong_to_the_populations():
    lo, hi = OP.UNCERTAIN
    assert OP.assign(np.array([lo, hi, np.nextafter(lo, 1), np.nextafter(hi, 0)])) == ["child", "adult", None, None]


def test_balanced_weights_give_every_group_and_class_cell_the_same_total():
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    w = OP.balanced_weights(y, g)
    assert np.allclose(w, [1 / 3, 1 / 3, 1 / 3, 1, 1, 1 / 3, 1 / 3, 1 / 3])
    assert all(w[(g == gg) & (y == c)].sum() == pytest.approx(1.0) for gg in (0, 1) for c in (0, 1))


def _mean_j(y, s, groups, t):
    """Mean over groups of Youden's J calling score >= t positive (written out, not the library's)."""
    js = []
    for gg in np.unique(groups):
        m = groups == gg
        pos, neg = s[m][y[m] == 1], s[m][y[m] == 0]
        js.append((pos >= t).mean() + (neg < t).mean() - 1)
    return float(np.mean(js))


def test_each_centre_maximises_the_mean_j_over_its_conditions_and_populations():
    # The shifts are read on a subset of the films (a quarter), far apart, so each condition weighing the same
    # (not each film) decides the centre.
    rng = np.random.default_rng(5)
    val = {"child": _population(rng, 400, 2.0, prevalence=0.7), "adult": _population(rng, 120, -1.0, prevalence=0.4)}
    sub = {p: np.arange(0, len(y), 4) for p, (y, _) in val.items()}
    shifted = {p: {"blur": lg[sub[p]] + 2.5, "crop": lg[sub[p]] - 0.8} for p, (_, lg) in val.items()}
    clean = {p: (y[sub[p]], lg[sub[p]]) for p, (y, lg) in val.items()}
    op = OP.choose_operating_point(val, shifted, clean)

    def conditions(p):
        (y, lg), (ys, ls) = val[p], clean[p]
        return np.r_[y, ys, ys], np.r_[lg, ls + 2.5, ls - 0.8], np.repeat([0, 1, 2], [len(y), len(ys), len(ys)])

    for pop, (y, lg) in val.items():
        yy, ss, cond = conditions(pop)
        best = max(_mean_j(yy, ss, cond, t) for t in np.unique(ss))
        if pop == "child":  # these films tell the rules apart: every film weighing the same would choose another point
            alike = max(_mean_j(yy, ss, np.zeros(len(yy)), t) for t in np.unique(ss))
            assert _mean_j(yy, ss, np.zeros(len(yy)), op["per_population"][pop]["centre_logit"] - 1e-9) < alike - 0.005
        assert _mean_j(yy, ss, cond, op["per_population"][pop]["centre_logit"] - 1e-9) == pytest.approx(best, abs=1e-9)
        # movement: each condition's own Youden point read on the population's centred scale
        assert op["movement"][pop]["clean"] == pytest.approx(OP.calibrate(op, np.array([M.youden_threshold(y, lg)]), [pop])[0])
        ys, ls = clean[pop]
        assert op["movement"][pop]["blur"] == pytest.approx(OP.calibrate(op, np.array([M.youden_threshold(ys, ls + 2.5)]), [pop])[0])
    parts = [conditions(p) for p in val]
    yy, ss = np.concatenate([c[0] for c in parts]), np.concatenate([c[1] for c in parts])
    groups = np.concatenate([c[2] + 10 * i for i, c in enumerate(parts)])
    best = max(_mean_j(yy, ss, groups, t) for t in np.unique(ss))
    assert _mean_j(yy, ss, groups, op["pooled"]["centre_logit"] - 1e-9) == pytest.approx(best, abs=1e-9)
    assert op["uncertain_band"] == list(OP.UNCERTAIN) and op["adult_age_years"] == 18


def test_the_slopes_are_class_and_population_balanced_platt_fits():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(6)
    val = {"child": _population(rng, 500, 2.0, prevalence=0.8), "adult": _population(rng, 150, -1.0, 0.8, prevalence=0.3)}
    op = OP.choose_operating_point(val, {p: {"s": lg + 0.1} for p, (_, lg) in val.items()})

    def balanced_slope(y, z, groups):  # scikit-learn's fit with the weights pinned by the test above
        w = OP.balanced_weights(y, groups)
        lr = LogisticRegression(C=1e6, max_iter=5000).fit(z.reshape(-1, 1), y, sample_weight=w * len(y) / w.sum())
        return lr.coef_[0, 0]

    for pop, (y, lg) in val.items():
        assert op["per_population"][pop]["a"] == pytest.approx(balanced_slope(y, lg, np.zeros(len(y))), rel=0.02)
    y = np.r_[val["child"][0], val["adult"][0]]
    z = np.r_[val["child"][1], val["adult"][1]]
    g = np.repeat([0, 1], [len(val["child"][0]), len(val["adult"][0])])
    assert op["pooled"]["a"] == pytest.approx(balanced_slope(y, z, g), rel=0.02)
    assert op["pooled"]["a"] != pytest.approx(balanced_slope(y, z, np.zeros(len(y))), rel=0.02)


def test_a_perfectly_separated_validation_set_still_gets_a_centred_map():
    y = np.array([0, 0, 0, 1, 1, 1])
    lg = np.array([-3.0, -2.0, -1.5, 1.0, 2.0, 4.0])
    m = OP.centred_map(y, lg, np.zeros(6), y, lg, np.zeros(6))
    assert 0 < m["a"] < 10 and -1.5 < m["centre_logit"] <= 1.0  # a finite slope; the centre between the classes
    p = 1 / (1 + np.exp(-(m["a"] * lg + m["b"])))
    assert (p[y == 1] >= 0.5).all() and (p[y == 0] < 0.5).all()


def test_a_population_without_its_own_map_is_read_on_the_pooled_one():
    op = {"per_population": {"child": {"a": 1.5, "b": -3.0}}, "pooled": {"a": 1.0, "b": -1.0}}
    assert OP.calibrate(op, np.array([2.0]), ["adult"])[0] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_population_model_is_a_class_balanced_penalised_fit_on_standardised_features():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    f = np.r_[rng.normal(0, 1, (300, 4)), rng.normal(0, 2, (60, 4)) + np.r_[1.0, -0.5, 0, 0]] * [1, 10, 0.1, 1] + 5
    adult = np.r_[np.zeros(300), np.ones(60)]
    m = OP.fit_population_model(f, adult)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, class_weight="balanced", max_iter=2000)).fit(f, adult)
    assert np.allclose(m.p_adult(f), ref.predict_proba(f)[:, 1], atol=1e-4)
    assert m.p_adult(f[:3]).shape == (3,)


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
