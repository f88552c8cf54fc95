"""Trees exported as plain arrays give sklearn's own log-odds; summary features are causal and never filled."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import read_record
from cxr_model.vitals.summary import summary_feature_names, summary_features
from cxr_model.vitals import trees as trees_module
from cxr_model.vitals.trees import Trees, export_trees


def test_the_numpy_walk_equals_sklearns_decision_function_with_missing_values(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(scale=0.5, size=600) > 0.5).astype(int)
    x[rng.random(x.shape) < 0.2] = np.nan  # missing values go where the tree learnt they go
    model = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=7, random_state=0).fit(x, y)
    export_trees(model, tmp_path / "trees.npz")
    trees = Trees.load(tmp_path / "trees.npz")
    probe = rng.normal(size=(300, 5))
    probe[rng.random(probe.shape) < 0.3] = np.nan
    assert np.allclose(trees.decision_function(probe), model.decision_function(probe), atol=1e-9)
    with pytest.raises(ValueError, match=r"\[N, 5\]"):
        trees.decision_function(probe[:, :4])


@pytest.mark.parametrize("leaves", [7, 40, 80])  # one uint8 word, one uint64 word, too big: node by node
def test_every_walk_equals_sklearn_across_blocks_of_rows(tmp_path, monkeypatch, leaves):
    rng = np.random.default_rng(leaves)
    x = rng.normal(size=(3000, 6))
    y = (x[:, 0] * x[:, 1] + np.sin(3 * x[:, 2]) + rng.normal(scale=0.3, size=3000) > 0).astype(int)
    x[rng.random(x.shape) < 0.1] = np.nan
    model = HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=leaves, min_samples_leaf=5, random_state=0).fit(x, y)
    export_trees(model, tmp_path / "trees.npz")
    monkeypatch.setattr(trees_module, "BLOCK", 5000)  # several blocks of rows, and a last short one
    trees = Trees.load(tmp_path / "trees.npz")
    n_leaves = max(int(t[0].nodes["is_leaf"].sum()) for t in model._predictors)
    assert (trees._masks is None) == (n_leaves > trees_module.MAX_LEAVES)
    probe = rng.normal(size=(2000, 6))
    probe[rng.random(probe.shape) < 0.3] = np.nan
    assert np.allclose(trees.decision_function(probe), model.decision_function(probe), atol=1e-9)
    assert np.allclose(trees.decision_function(probe.astype(np.float32)),
                       model.decision_function(probe.astype(np.float32).astype(np.float64)), atol=1e-9)


def test_the_bundled_trees_give_the_node_by_node_walk_on_real_stays(physionet_dir):
    from cxr_model.settings import get_settings
    from cxr_model.vitals.bundle import load_vitals_bundle
    from cxr_model.vitals.summary import stack_features

    trees = load_vitals_bundle(get_settings().vitals_model_dir).trees
    assert trees is not None and trees._masks is not None
    paths = sorted(p for p in (physionet_dir / "set-a").glob("*.txt") if not p.name.lower().startswith("outcomes"))
    x = stack_features([to_grid(read_record(p)) for p in paths[:50]], n_features=trees.n_features).reshape(-1, trees.n_features)
    fast, slow = trees.decision_function(x), trees._walk(x.astype(np.float64))
    assert np.allclose(fast, slow, rtol=0, atol=1e-12) and fast.std() > 0.1


def test_a_pickle_is_refused_by_the_loader(tmp_path):
    path = tmp_path / "trees.npz"
    np.savez(path, roots=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="trees.npz"):
        Trees.load(path)


def test_a_pickled_field_in_an_otherwise_complete_export_is_refused_not_unpickled(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, (x[:, 0] > 0).astype(int))
    export_trees(model, tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(tmp_path / "trees.npz", **dict(arrays, value=arrays["value"].astype(object)))
    with pytest.raises(ValueError, match="trees.npz: not a tree export.*allow_pickle=False"):
        Trees.load(tmp_path / "trees.npz")


def test_categorical_and_multi_class_models_are_refused_by_the_export(tmp_path):
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.integers(0, 4, 300), rng.normal(size=300)]).astype(float)
    y = (x[:, 0] % 2 == 1).astype(int)
    cat = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0], random_state=0).fit(x, y)
    with pytest.raises(ValueError, match="categorical splits"):
        export_trees(cat, tmp_path / "cat.npz")
    multi = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, x[:, 0].astype(int) % 3)
    with pytest.raises(ValueError, match="only binary classifiers"):
        export_trees(multi, tmp_path / "multi.npz")


def test_integer_rows_are_scored_as_their_float_values(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 10, size=(400, 3))
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x.astype(float), (x[:, 0] > 4).astype(int))
    export_trees(model, tmp_path / "trees.npz")
    trees = Trees.load(tmp_path / "trees.npz")
    assert np.allclose(trees.decision_function(x), model.decision_function(x.astype(float)), atol=1e-9)


def test_summary_features_are_causal_and_missing_is_nan(record_writer):
    rows = [("00:30", "HR", 80), ("05:10", "HR", 120), ("05:40", "HR", 100), ("10:00", "Temp", 38)]
    grid = to_grid(read_record(record_writer(3, rows)))
    f = summary_features(grid)
    col = {n: i for i, n in enumerate(summary_feature_names())}
    assert f.shape == (48, len(col))
    assert f[0, col["HR:last"]] == 80 and f[0, col["HR:n_obs"]] == 1 and np.isnan(f[0, col["Temp:last"]])
    assert f[5, col["HR:last"]] == 100 and f[5, col["HR:max"]] == 100 and f[5, col["HR:first"]] == 80
    assert f[4, col["HR:max"]] == 80  # hour 5 is not seen at hour 4
    assert f[5, col["HR:mean"]] == pytest.approx(90) and f[9, col["HR:hours_since"]] == 4
    assert np.isnan(f[:, col["RespRate:last"]]).all() and (f[:, col["RespRate:n_obs"]] == 0).all()
    assert f[47, col["hour"]] == 48 and f[0, col["Age"]] == 70


def test_a_bag_of_models_is_written_as_one_set_of_trees_giving_their_mean_log_odds(tmp_path):
    from cxr_model.vitals.crossval import TreeBag

    rng = np.random.default_rng(3)
    x = rng.normal(size=(800, 6))
    y = (x[:, 0] - x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=800) > 0).astype(int)
    x[rng.random(x.shape) < 0.15] = np.nan
    models = [HistGradientBoostingClassifier(max_iter=20 + 10 * k, max_leaf_nodes=7, max_features=0.5,
                                             random_state=k).fit(x, y) for k in range(3)]
    export_trees(TreeBag(models), tmp_path / "trees.npz")
    trees = Trees.load(tmp_path / "trees.npz")
    assert len(trees.roots) == sum(m.n_iter_ for m in models)
    probe = rng.normal(size=(500, 6))
    probe[rng.random(probe.shape) < 0.3] = np.nan
    each = np.stack([m.decision_function(probe) for m in models])
    assert np.allclose(trees.decision_function(probe), each.mean(axis=0), atol=1e-9)
    assert np.abs(each - each.mean(axis=0)).max() > 0.1  # the members differ, so a sum or one member would fail
