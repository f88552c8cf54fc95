"""Choices made on out-of-fold predictions: the event-1 threshold rule and the LSTM weight of the ensemble."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxr_model.metrics.classification import compute_event1, compute_threshold_metrics, event1_count_threshold
from cxr_model.vitals.crossval import choose_weight, fold_indices


def test_count_threshold_calls_as_many_stays_as_there_are_deaths():
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    t = event1_count_threshold(y, s)
    assert t == 0.7  # the third-highest score: 3 deaths -> 3 stays called
    m = compute_threshold_metrics(y, s, t)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["ppv"] == pytest.approx(2 / 3)
    assert compute_event1(y, s, t) == pytest.approx(2 / 3)


def test_count_threshold_calls_ties_at_the_cut_and_needs_both_classes():
    assert event1_count_threshold([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.1]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        event1_count_threshold([0, 0, 0], [0.1, 0.2, 0.3])


def test_count_threshold_matches_sensitivity_and_ppv_on_a_random_ranking():
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.14).astype(int)
    s = rng.normal(size=2000) + 1.2 * y
    t = event1_count_threshold(y, s)
    assert int((s >= t).sum()) == y.sum()
    m = compute_threshold_metrics(y, s, t)
    assert m["sensitivity"] == pytest.approx(m["ppv"])


def _scores(rng, n=3000):
    y = (rng.random(n) < 0.15).astype(int)
    signal = np.repeat(y[:, None], 48, axis=1).astype(float)
    return y, signal


def test_the_weight_follows_the_informative_half():
    rng = np.random.default_rng(0)
    y, signal = _scores(rng)
    informative = signal + rng.normal(size=signal.shape)
    noise = rng.normal(size=signal.shape)
    assert choose_weight(y, informative, noise)[0] == 1.0
    assert choose_weight(y, noise, informative)[0] == 0.0


def test_two_equally_good_independent_halves_are_mixed_and_the_scores_are_aurocs():
    rng = np.random.default_rng(1)
    y, signal = _scores(rng)
    a, b = signal + rng.normal(size=signal.shape), signal + rng.normal(size=signal.shape)
    w, scores = choose_weight(y, a, b)
    assert 0.3 <= w <= 0.7 and scores[w] > max(scores[0.0], scores[1.0])
    expected = np.mean([roc_auc_score(y, 0.3 * a[:, h] + 0.7 * b[:, h]) for h in (23, 47)])
    assert scores[0.3] == pytest.approx(expected)


def test_a_tie_between_weights_goes_to_the_even_mix():
    rng = np.random.default_rng(2)
    y, signal = _scores(rng)
    z = signal + rng.normal(size=signal.shape)
    assert choose_weight(y, z, z)[0] == 0.5  # identical halves: every weight scores the same


def test_folds_are_stratified_and_cover_every_stay_once():
    y = np.array([1] * 30 + [0] * 170)
    folds = fold_indices(y, 5, seed=7)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(200))
    assert all(y[h].sum() == 6 and not set(f) & set(h) for f, h in folds)


def test_trees_fit_when_a_summary_column_was_never_measured_and_never_split_on_it():
    from cxr_model.vitals.crossval import fit_trees, tree_logits

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 48, 3)).astype(np.float32)
    x[:, :, 2] = np.nan  # e.g. a slope of a lab no fitting stay had twice
    y = (x[:, -1, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    model = fit_trees(x, y, seed=0)
    probe = x[:20].copy()
    z = tree_logits(model, probe)
    probe[:, :, 2] = 5.0  # the column the trees could not learn from changes nothing
    assert np.array_equal(tree_logits(model, probe), z) and z.std() > 0


def test_trees_take_one_label_per_row_when_the_target_depends_on_the_hour():
    from sklearn.metrics import roc_auc_score

    from cxr_model.vitals.crossval import TREE_HOURS, fit_trees, tree_logits

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 48, 2)).astype(np.float32)
    y = (x[:, -1, 0] > 0).astype(int)
    same = np.repeat(y[:, None], len(TREE_HOURS), axis=1)  # a per-row label equal to the stay's: the same trees
    assert np.array_equal(tree_logits(fit_trees(x, same, seed=0), x), tree_logits(fit_trees(x, y, seed=0), x))
    # each row's own label: feature 1 at that row's hour; a row-order slip would pair labels with other hours
    per_row = np.stack([(x[:, h - 1, 1] > 0).astype(int) for h in TREE_HOURS], axis=1)
    z = tree_logits(fit_trees(x, per_row, seed=0), x)
    for i, h in enumerate(TREE_HOURS):  # misaligned labels would rank at about 0.5
        assert roc_auc_score(per_row[:, i], z[:, h - 1]) > 0.95


def test_bagged_trees_are_differently_seeded_models_on_feature_subsets_and_one_bag_is_the_plain_recipe():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from cxr_model.vitals.crossval import BAG_MAX_FEATURES, GBT_PARAMS, TREE_HOURS, fit_trees, tree_logits

    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 48, 6)).astype(np.float32)
    y = (x[:, -1, :3].sum(axis=1) + rng.normal(scale=0.5, size=300) > 0).astype(int)
    bag = fit_trees(x, y, seed=5, bags=3)
    assert [m.random_state for m in bag.models] == [5, 1005, 2005]
    assert all(m.max_features == BAG_MAX_FEATURES < 1 for m in bag.models)
    each = np.stack([tree_logits(m, x) for m in bag.models])
    assert np.allclose(tree_logits(bag, x), each.mean(axis=0))
    assert all(not np.allclose(each[0], e) for e in each[1:])  # the seeds draw different feature subsets
    (single,) = fit_trees(x, y, seed=5).models  # the bundled recipe: one model, every feature at every split
    rows = x[:, [h - 1 for h in TREE_HOURS]].reshape(-1, 6)
    plain = HistGradientBoostingClassifier(random_state=5, **GBT_PARAMS).fit(rows, np.repeat(y, len(TREE_HOURS)))
    assert single.max_features == 1.0 and np.array_equal(single.decision_function(rows), plain.decision_function(rows))


def test_kept_fold_models_are_the_ones_that_scored_the_held_out_stays(physionet_dir):
    import torch

    from cxr_model.vitals.crossval import out_of_fold, tree_logits
    from cxr_model.vitals.grid import to_grid
    from cxr_model.vitals.lstm import VitalsLSTM, features
    from cxr_model.vitals.normaliser import Normaliser
    from cxr_model.vitals.reader import load_outcomes, read_record
    from cxr_model.vitals.summary import stack_features

    torch.set_num_threads(1)
    outcomes = load_outcomes(physionet_dir / "Outcomes-a.txt")
    paths = sorted(p for p in (physionet_dir / "set-a").glob("*.txt") if not p.name.lower().startswith("outcomes"))
    grids = [to_grid(read_record(p)) for p in paths[:90]]
    y = np.array([int(outcomes[g.record_id]["In-hospital_death"]) for g in grids])
    x_sum = stack_features(grids)
    hp = {"hidden": 8, "layers": 1, "dropout": 0.0, "lr": 1e-3, "weight_decay": 0.0, "batch_size": 32}
    norm = Normaliser.fit(grids)
    folds, kept = fold_indices(y, 2, seed=0), []
    oof_lstm, oof_gbt = out_of_fold(grids, x_sum, y, folds, hp, 2, 1, 0, normaliser=norm, keep=kept)
    assert len(kept) == 2
    for (_, held), fold in zip(folds, kept):
        (states,) = fold["lstm_states"]  # one member, one snapshot per epoch
        assert len(states) == 2
        assert np.array_equal(tree_logits(fold["trees"], x_sum[held]), oof_gbt[held])
        for epoch, state in enumerate(states):  # each snapshot gives that epoch's out-of-fold logits
            member = VitalsLSTM(norm.n_features, 8, 1, 0.0)
            member.load_state_dict(state)
            with torch.inference_mode():
                z = member.eval()(features(norm, [grids[i] for i in held])).double().numpy()
            assert np.allclose(z, oof_lstm[epoch, held], atol=1e-6)
        assert not np.allclose(states[0]["lstm.weight_ih_l0"], states[1]["lstm.weight_ih_l0"])  # copies, not one tensor
