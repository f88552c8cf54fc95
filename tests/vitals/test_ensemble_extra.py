"""``train-ensemble --extra RECORDS OUTCOMES``: more labelled stays (e.g. the challenge's set C) trained on beside
train + validation, written to ``splits.csv`` as ``extra`` and counted as seen; never a stay of the split."""
from __future__ import annotations

import os

import pytest

from cxr_model.vitals.reader import load_outcomes
from cxr_model.vitals.splits import read_split


@pytest.fixture(scope="module")
def tiny_lstm(physionet_dir, tmp_path_factory):
    import torch

    from cxr_model.vitals.train import VitalsTrainConfig, train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("lstm")
    train(VitalsTrainConfig(records=str(physionet_dir / "set-a"), outcomes=str(physionet_dir / "Outcomes-a.txt"),
                            out=str(out), max_records=150, epochs=1, hidden=8, members=1))
    return out


def _extra_folder(physionet_dir, tmp_path, ids):
    """Real set-A records ``ids`` linked into a folder of their own, with their rows of the outcomes file."""
    folder = tmp_path / "more"
    folder.mkdir()
    for rid in ids:
        os.symlink(physionet_dir / "set-a" / f"{rid}.txt", folder / f"{rid}.txt")
    lines = (physionet_dir / "Outcomes-a.txt").read_text().splitlines()
    keep = {str(r) for r in ids}
    (tmp_path / "Outcomes-more.txt").write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0] in keep]) + "\n")
    return folder, tmp_path / "Outcomes-more.txt"


def _outside_split(physionet_dir, lstm, n):
    in_split = {int(ln.split(",")[0]) for ln in (lstm / "splits.csv").read_text().splitlines()[1:]}
    ids = sorted(int(p.stem) for p in (physionet_dir / "set-a").glob("1*.txt"))
    return [i for i in ids if i not in in_split][:n]


def test_extra_stays_join_every_fold_and_choice_and_are_written_as_seen(physionet_dir, tiny_lstm, tmp_path):
    from cxr_model.cli import main
    from cxr_model.vitals.evaluate import seen_in_training

    ids = _outside_split(physionet_dir, tiny_lstm, 40)
    folder, outcomes = _extra_folder(physionet_dir, tmp_path, ids)
    out = tmp_path / "ens"
    assert main(["vitals", "train-ensemble", "--records", str(physionet_dir / "set-a"), "--outcomes",
                 str(physionet_dir / "Outcomes-a.txt"), "--lstm", str(tiny_lstm), "--out", str(out), "--folds", "2",
                 "--max-epochs", "1", "--lstm-members", "1", "--extra", str(folder), str(outcomes)]) == 0
    import json

    meta = json.loads((out / "metadata.json").read_text())
    td = meta["training_data"]
    deaths = sum(int(o["In-hospital_death"]) for o in load_outcomes(outcomes).values())
    assert td["extra"] == {"records": "more", "outcomes": "Outcomes-more.txt", "n": 40, "n_positive": deaths}
    assert meta["validation"]["ensemble_48h"]["n"] == td["n_train"] + td["n_val"] + 40  # chosen on them too
    assert sorted(read_split(out / "splits.csv", "extra")) == ids
    assert read_split(out / "splits.csv", "test") == read_split(tiny_lstm / "splits.csv", "test")
    assert seen_in_training(out, ids + read_split(out / "splits.csv", "test")) == 40
    card = (out / "MODEL_CARD.md").read_text()
    assert f"Also trained on 40 more labelled stays ({deaths} deaths) from `more`" in card
    assert "Tested on set A only" in card and "Trained and tested on set A only" not in card


def test_extra_stays_that_are_stays_of_the_split_or_lack_an_outcome_are_refused(physionet_dir, tiny_lstm, tmp_path):
    from cxr_model.vitals.train_ensemble import extra_stays

    test_id = read_split(tiny_lstm / "splits.csv", "test")[0]
    outside = _outside_split(physionet_dir, tiny_lstm, 2)
    folder, outcomes = _extra_folder(physionet_dir, tmp_path, outside + [test_id])
    split_ids = {int(ln.split(",")[0]) for ln in (tiny_lstm / "splits.csv").read_text().splitlines()[1:]}
    with pytest.raises(ValueError, match=f"{folder}: 1 extra records are stays of the bundle's split \\(e.g. RecordID {test_id}\\)"):
        extra_stays(folder, outcomes, split_ids)
    grids, y, _ = extra_stays(folder, outcomes, split_ids - {test_id})
    assert sorted(g.record_id for g in grids) == sorted(outside + [test_id]) and len(y) == 3
    outcomes.write_text(outcomes.read_text().splitlines()[0] + "\n" + f"{outside[0]},1,1,1,-1,0\n")
    with pytest.raises(ValueError, match=f"{outcomes}: no outcome for 2 extra records"):
        extra_stays(folder, outcomes, set())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"{empty}: no \\*.txt records"):
        extra_stays(empty, outcomes, set())
