"""Where the OOD check gets its data: the bundle's own split, and its stored statistics (exact
messages when either is missing), pinned after mutation testing found them loose."""
from __future__ import annotations

import copy
import csv
import re
import shutil

import pytest

from cxr_model.imaging.ood import OodError, load_ood, split_items

FIT = "run `cxr-model ood fit`"


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_split_items_are_that_part_of_splits_csv_with_their_labels(cxr_bundle, kermany_dir, split):
    with open(cxr_bundle.path / "splits.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split and r.get("population", "child") == "child"]
    items = split_items(cxr_bundle, kermany_dir, split)  # children by default
    assert [str(it.path) for it in items] == [str(kermany_dir / r["path"]) for r in rows]
    assert [it.label for it in items] == [int(r["label"] == "PNEUMONIA") for r in rows]
    assert len(items) == {"train": 3652, "val": 782, "test": 782}[split]


def test_split_items_of_both_populations_root_adults_in_their_folder(cxr_bundle, kermany_dir, tmp_path):
    other = copy.copy(cxr_bundle)
    other.path = tmp_path
    (tmp_path / "splits.csv").write_text("path,label,split,population\ntrain/NORMAL/a.jpeg,NORMAL,test,child\n"
                                         "images/b.jpg,PNEUMONIA,test,adult\nimages/c.jpg,NORMAL,val,adult\n")
    items = split_items(other, kermany_dir, "test", None, tmp_path / "nih")
    assert [(str(it.path), it.label, it.extra["population"]) for it in items] == [
        (str(kermany_dir / "train/NORMAL/a.jpeg"), 0, "child"), (str(tmp_path / "nih/images/b.jpg"), 1, "adult")]
    with pytest.raises(OodError, match="adult rows need the adult data folder"):
        split_items(other, kermany_dir, "test", None)


def _bundle_in(tmp_path, cxr_bundle, files):
    other = copy.copy(cxr_bundle)
    other.path = tmp_path
    for f in files:
        shutil.copy(cxr_bundle.path / f, tmp_path / f)
    return other


def test_a_bundle_without_splits_csv_says_so(cxr_bundle, tmp_path):
    with pytest.raises(OodError, match=re.escape(f"{tmp_path / 'splits.csv'}: the bundle has no splits.csv, "
                                                 "so its training images are unknown")):
        split_items(_bundle_in(tmp_path, cxr_bundle, []), tmp_path, "train")


@pytest.mark.parametrize("present", [[], ["ood.pt"], ["ood.json"]])
def test_missing_ood_statistics_say_what_to_run(cxr_bundle, tmp_path, present):
    other = _bundle_in(tmp_path, cxr_bundle, present)
    with pytest.raises(OodError, match=f"^{re.escape(f'{tmp_path.name}: no OOD statistics; {FIT}')}$"):
        load_ood(other)


def test_stale_statistics_message_says_what_to_run(cxr_bundle, tmp_path):
    other = _bundle_in(tmp_path, cxr_bundle, ["ood.pt", "ood.json"])
    other.meta = dict(cxr_bundle.meta, sha256="0" * 64)
    with pytest.raises(OodError, match=re.escape(f"OOD statistics were fitted for other weights; {FIT}") + "$"):
        load_ood(other)


def test_features_have_one_row_per_image_in_order_and_empty_is_empty(cxr_bundle, kermany_dir):
    import numpy as np
    import torch

    from cxr_model.imaging.data import load_sources
    from cxr_model.imaging.ood import batch_features, gray_features, source_features
    from cxr_model.imaging.transforms import EvalTransform

    src, _ = load_sources(split_items(cxr_bundle, kermany_dir, "val")[:3])
    f = source_features(cxr_bundle, src, batch_size=2)
    one = [batch_features(cxr_bundle, EvalTransform(cxr_bundle.img_size)(src[i:i + 1]))[0] for i in range(3)]
    assert f.shape[0] == 3 and np.allclose(f, np.stack(one), atol=1e-4)
    assert source_features(cxr_bundle, src[:0]).shape == (0, 0) and gray_features(cxr_bundle, []).shape == (0, 0)
    assert torch.is_tensor(src)


class _Evil:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Evil.marker),))


def test_ood_statistics_that_are_a_pickled_program_are_not_run(cxr_bundle, tmp_path):
    import pickle

    import torch

    other = _bundle_in(tmp_path, cxr_bundle, ["ood.json"])
    _Evil.marker = str(tmp_path / "pwned")
    torch.save({"mean": _Evil()}, tmp_path / "ood.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_ood(other)
    assert not (tmp_path / "pwned").exists()
