"""A small evaluation run folder scored from real Kermany radiographs by the bundled model.

Shared by the report, page and browser tests. It goes through the real ``evaluate`` pipeline
(``imaging.evaluate.run_evaluation``) with a handful of images and one unreadable file, so the
report sees every kind of row it must handle: normal, bacterial and viral pneumonia, an error.
"""
from __future__ import annotations

import csv
from pathlib import Path

from cxr_model.imaging.data import Item, kermany_items
from cxr_model.imaging.labels import CLASSES


def pick_items(kermany_dir: Path, per_group: int = 6) -> list[Item]:
    """``per_group`` normal, bacterial and viral images (val first, then train), sorted by path."""
    pool = kermany_items(kermany_dir, "val") + kermany_items(kermany_dir, "train")
    chosen = []
    for label, subtype in ((0, ""), (1, "bacteria"), (1, "virus")):
        chosen += [it for it in pool if it.label == label and (it.subtype or "") == subtype][:per_group]
    return chosen


def make_run(out_dir: Path, kermany_dir: Path, bundle, per_group: int = 6) -> Path:
    """Score ``pick_items`` plus a truncated JPEG into ``out_dir`` (which also gets report.html)."""
    from cxr_model.imaging.evaluate import run_evaluation

    out_dir.mkdir(parents=True, exist_ok=True)
    items = pick_items(kermany_dir, per_group)
    broken = out_dir.parent / "broken_bacteria_1.jpeg"
    broken.write_bytes(items[0].path.read_bytes()[:300])  # a JPEG cut off after its header
    items.append(Item(broken, 1, "broken", "bacteria"))
    # a labelled CSV, as a user would hand one to `cxr-model evaluate --data`
    csv_path = out_dir.parent / "labelled-sample.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "subtype"])
        w.writerows([str(it.path), CLASSES[it.label], it.subtype] for it in items)
    run_evaluation(csv_path, bundle, out_dir, batch_size=8, workers=0, show_bar=False)
    return out_dir
