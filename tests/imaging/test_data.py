"""Listing labelled sets and splitting by child."""
from __future__ import annotations

from collections import defaultdict

import pytest

from cxr_model.imaging import data as D
from cxr_model.imaging.data import is_labelled_csv, labelled_sets
from cxr_model.imaging.splits import duplicate_groups, split_by_child


@pytest.mark.parametrize(
    "name,group",
    [("person123_bacteria_45.jpeg", "person123"), ("person7_virus_13.jpeg", "person7"),
     ("IM-0115-0001.jpeg", "IM-0115"), ("NORMAL2-IM-0587-0001-0002.jpeg", "NORMAL2-IM-0587"),
     ("chest.png", "chest")],
)
def test_child_group_from_file_name(name, group):
    assert D.child_group(name) == group


def test_split_keeps_each_child_and_duplicate_group_on_one_side(kermany_dir):
    items = D.kermany_items(kermany_dir, "train")
    assert len(items) == 5216
    dups = duplicate_groups(kermany_dir)
    parts = split_by_child(items, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0, duplicates=dups)
    assert sum(len(v) for v in parts.values()) == len(items)
    where_group, where_dup = defaultdict(set), defaultdict(set)
    for name, part in parts.items():
        for it in part:
            where_group[it.group].add(name)
            if it.path.name in dups:
                where_dup[dups[it.path.name]].add(name)
    assert all(len(v) == 1 for v in where_group.values())
    assert where_dup and all(len(v) == 1 for v in where_dup.values())
    # stratified: each part's pneumonia share is close to the whole set's 74 %
    for part in parts.values():
        share = sum(it.label for it in part) / len(part)
        assert 0.70 < share < 0.78
    assert 0.13 < len(parts["val"]) / len(items) < 0.17
    # deterministic for a seed
    again = split_by_child(items, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0, duplicates=dups)
    assert [it.path for it in again["val"]] == [it.path for it in parts["val"]]


def test_list_kaggle_layout_recursively_and_csv(tmp_path):
    for rel in ["chest_xray/test/NORMAL/IM-0001-0001.jpeg", "chest_xray/test/PNEUMONIA/person1_virus_2.jpeg",
                "chest_xray/test/PNEUMONIA/sub/person2_bacteria_3.png", "chest_xray/test/NORMAL/readme.txt"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    (tmp_path / "chest_xray" / "notes.md").write_bytes(b"x")
    items, unlabelled = D.scan_labelled(tmp_path)
    # every file under a class folder is listed, whatever its suffix: the reader refuses readme.txt by
    # content later, and the evaluation puts it in errors.csv instead of losing it
    assert [(it.path.name, it.label, it.subtype) for it in items] == [
        ("IM-0001-0001.jpeg", 0, ""), ("readme.txt", 0, ""), ("person1_virus_2.jpeg", 1, "virus"),
        ("person2_bacteria_3.png", 1, "bacteria")]
    assert unlabelled == [(tmp_path / "chest_xray" / "notes.md",
                           "notes.md: no label (not inside a NORMAL/ or PNEUMONIA/ folder)")]
    assert D.list_labelled(tmp_path) == items
    (tmp_path / "set.csv").write_text("path,label,site\nchest_xray/test/NORMAL/IM-0001-0001.jpeg,NORMAL,A\n"
                                      "chest_xray/test/PNEUMONIA/person1_virus_2.jpeg,1,B\n")
    rows = D.list_labelled(tmp_path / "set.csv")
    assert [it.label for it in rows] == [0, 1] and rows[1].extra["site"] == "B" and rows[0].path.exists()


def test_csv_with_unknown_label_names_the_line(tmp_path):
    (tmp_path / "bad.csv").write_text("path,label\na.png,NORMAL\nb.png,maybe\n")
    with pytest.raises(ValueError, match=r"bad.csv line 3: unknown label 'maybe'"):
        D.list_labelled(tmp_path / "bad.csv")


def test_labelled_sets_lists_kermany_split_folders_and_csvs_with_a_path_label_header(tmp_path):
    cxr = tmp_path / "cxr"
    (cxr / "kermany" / "val" / "NORMAL").mkdir(parents=True)
    (cxr / "kermany" / "test" / "PNEUMONIA").mkdir(parents=True)
    (cxr / "kermany" / "notes").mkdir()  # no class folder: not a labelled set
    (cxr / "sets").mkdir()
    (cxr / "sets" / "good.csv").write_text("path,label\na.png,NORMAL\n")
    (cxr / "sets" / "other.csv").write_text("file,diagnosis\na.png,NORMAL\n")
    found = labelled_sets(tmp_path)
    assert found == {"Kermany test (folder)": cxr / "kermany" / "test", "Kermany val (folder)": cxr / "kermany" / "val",
                     "sets/good.csv (CSV)": cxr / "sets" / "good.csv"}
    assert is_labelled_csv(cxr / "sets" / "good.csv") and not is_labelled_csv(cxr / "sets" / "other.csv")
    assert not is_labelled_csv(cxr / "missing.csv") and labelled_sets(tmp_path / "nowhere") == {}
