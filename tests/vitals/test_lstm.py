"""The LSTM: shapes, causality, a tiny training run, the bundle and the one preprocessing path."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cxr_model.metrics.classification import event1_threshold
from cxr_model.registry import BundleError
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.evaluate import metrics_for, score_grids
from cxr_model.vitals.explain import occlusion
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.lstm import VitalsEnsemble, VitalsLSTM, first_crossing
from cxr_model.vitals.reader import N_HOURS, channel_names, load_outcomes, read_dir, read_record
from cxr_model.vitals.splits import read_split
from cxr_model.vitals.train import VitalsTrainConfig, train
from cxr_model.vitals.ward import build_ward


def test_forward_gives_a_logit_per_hour():
    torch.manual_seed(0)
    model = VitalsLSTM(122, hidden=16).eval()
    assert model(torch.randn(3, N_HOURS, 122)).shape == (3, N_HOURS)


def test_risk_at_hour_t_ignores_data_after_t():
    torch.manual_seed(0)
    model = VitalsEnsemble(122, hidden=16, members=3).eval()
    x = torch.randn(2, N_HOURS, 122)
    t = 20
    y = x.clone()
    y[:, t + 1:] = torch.randn(2, N_HOURS - t - 1, 122) * 5
    with torch.inference_mode():
        a, b = model(x), model(y)
    assert torch.equal(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


def test_event1_threshold_maximises_min_sensitivity_ppv():
    y = np.array([0, 0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    # at 0.6: se 2/3, ppv 1 -> 0.667; at 0.4: se 1, ppv 3/4 -> 0.75 (best); at 0.5: se 2/3, ppv 2/3
    assert event1_threshold(y, s) == pytest.approx(0.4)
    assert first_crossing(s, 0.45) == 4 and first_crossing(s, 0.9) is None


@pytest.fixture(scope="module")
def tiny_bundle(physionet_dir, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny-vitals")
    meta = train(VitalsTrainConfig(records=str(physionet_dir / "set-a"), outcomes=str(physionet_dir / "Outcomes-a.txt"),
                                   out=str(out), max_records=150, epochs=2, hidden=16, members=2))
    return out, meta


def test_tiny_training_run_writes_a_complete_bundle(tiny_bundle):
    out, meta = tiny_bundle
    assert {p.name for p in out.iterdir()} >= {"model.pt", "metadata.json", "MODEL_CARD.md", "normaliser.json", "splits.csv"}
    assert meta["task"] == "vitals-mortality" and meta["channels"] == channel_names()
    assert meta["threshold"]["split"] == "val" and "event-1" in meta["threshold"]["rule"]
    assert meta["training_data"]["n_train"] + meta["training_data"]["n_val"] + meta["training_data"]["n_test"] == 150
    assert meta["validation"]["lstm_48h"]["n"] == meta["training_data"]["n_val"]
    assert len(meta["history"]) == 4 and meta["hyperparameters"]["members"] == 2  # 2 epochs x 2 members
    assert "Decision support, not a diagnosis" in (out / "MODEL_CARD.md").read_text()
    bundle = load_vitals_bundle(out)
    assert bundle.threshold == meta["threshold"]["value"]


def test_tampered_weights_are_refused(tiny_bundle, tmp_path):
    out, _ = tiny_bundle
    for f in out.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "model.pt").write_bytes((out / "model.pt").read_bytes() + b"x")
    with pytest.raises(BundleError, match="sha256"):
        load_vitals_bundle(tmp_path)


def test_bundled_model_metadata_and_size(settings):
    d = settings.vitals_model_dir
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["task"] == "vitals-mortality" and meta["threshold"]["split"] in ("val", "train+val (out-of-fold)")
    assert 0 < meta["threshold"]["value"] < 1 and len(meta["calibration"]["a"]) == N_HOURS  # Platt per hour
    td = meta["training_data"]  # choices on validation, or on out-of-fold predictions of train + validation
    chosen_on = td["n_train"] + td["n_val"] if meta["threshold"]["split"] != "val" else td["n_val"]
    assert meta["validation"]["lstm_48h"]["n"] == chosen_on > 0
    assert (d / "model.pt").stat().st_size < 5_000_000  # 2.2.0: the 20 LSTMs of its 5 fold models, 3.9 MB
    assert "Decision support, not a diagnosis" in (d / "MODEL_CARD.md").read_text()


def test_one_preprocessing_path_for_evaluation_ward_and_explanation(settings, physionet_dir):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    ids = [132539, 132540, 132541]
    records, errors = read_dir(physionet_dir / "set-a", ids)
    assert errors == []
    scored = score_grids(bundle, [to_grid(r) for r in records], load_outcomes(physionet_dir / "Outcomes-a.txt"))
    ward = build_ward(records, bundle)
    single = bundle.risk([to_grid(read_record(physionet_dir / "set-a" / "132540.txt"))])
    assert np.allclose(scored.risk, np.stack([p.risk for p in ward]))
    assert np.allclose(single[0], scored.risk[1])
    contrib = occlusion(bundle, ward[0].grid, 30)
    assert len(contrib) == len(channel_names()) + 1
    never = [c for c in contrib if not c["observed"]]
    assert never and all(c["contribution"] == pytest.approx(0, abs=1e-6) for c in never)


def test_bundled_model_is_causal_on_a_real_stay(settings, physionet_dir):
    from dataclasses import replace

    bundle = load_vitals_bundle(settings.vitals_model_dir)
    grid = to_grid(read_record(physionet_dir / "set-a" / "132539.txt"))
    t = 23
    values, mask = grid.values.copy(), grid.mask.copy()
    values[t + 1:] *= 1.5  # a different future
    mask[t + 1:] = 1.0
    changed = replace(grid, values=values, mask=mask)
    a, b = bundle.risk([grid])[0], bundle.risk([changed])[0]
    assert np.array_equal(a[: t + 1], b[: t + 1])
    assert not np.allclose(a[t + 1:], b[t + 1:])


def test_bundled_model_ranks_held_out_stays_well(settings, physionet_dir):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    ids = read_split(settings.vitals_model_dir / "splits.csv", "test")[:300]
    records, errors = read_dir(physionet_dir / "set-a", ids)
    assert errors == [] and len(records) == 300
    m = metrics_for(score_grids(bundle, [to_grid(r) for r in records], load_outcomes(physionet_dir / "Outcomes-a.txt")),
                    bundle.meta, n_boot=10)
    key = "ensemble_48h" if bundle.trees is not None else "lstm_48h"
    assert m[key]["n"] == m["lstm_48h"]["n"] == 300
    assert m[key]["auroc"] > 0.75  # far above chance on stays never used for training or thresholds
    assert m[key]["auroc"] > m["news2_48h"]["auroc"] and m["lstm_48h"]["auroc"] > m["news2_48h"]["auroc"]
