"""The training run's settings (TrainConfig) and its child-level split."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cxr_model.imaging import data as D
from cxr_model.imaging.splits import duplicate_groups, split_by_child


@dataclass
class TrainConfig:
    data: str
    out: str
    arch: str = "resnet18"
    img_size: int = 160
    epochs: int = 14
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    patience: int = 5
    seed: int = 0
    val_frac: float = 0.15
    test_frac: float = 0.15
    max_items: int = 0  # >0: use only this many training files (tests, smoke runs)
    max_steps: int = 0  # >0: stop each epoch after this many steps
    workers: int = 0
    name: str = "cxr-pneumonia-resnet18"
    version: str = "1.0.0"
    device: str = ""
    select_on: str = "hard"  # "hard": val pooled with 4 acquisition shifts; "clean": val as is
    # Model 2 (children and adults; see train_mixed.py). All off by default: 1.1.0's recipe.
    adult_data: str = ""  # nih_adult folder; when set, train on both populations
    init_from: str = ""  # bundle folder whose weights start the run
    kermany_splits: str = ""  # a bundle's splits.csv: reuse its child-level split
    mix: int = 0  # films per population per epoch (0: 1500)
    site_augment: bool = False  # JPEG quality and burned-in marker augmentation
    threads: int = 0  # >0: torch.set_num_threads
    finish_only: bool = False  # build the bundle from out/checkpoints/best.pt, no training
    time_budget_min: float = 0.0  # >0: train until this many minutes, LR on a cosine of elapsed time
    select_child_n: int = 0  # >0: per-epoch selection on a seeded subset of this many child val films
    mix_adult: int = 0  # >0: adult films per epoch (default: mix), to up-weight adults
    confirmed_weight: float = 1.0  # draw weight of adult films whose label RSNA radiologists confirmed


def split_data(cfg: TrainConfig) -> dict[str, list[D.Item]]:
    items = D.kermany_items(cfg.data, "train")
    if cfg.max_items:
        rng = np.random.default_rng(cfg.seed)
        items = [items[i] for i in sorted(rng.choice(len(items), min(cfg.max_items, len(items)), replace=False))]
    fractions = {"train": 1 - cfg.val_frac - cfg.test_frac, "val": cfg.val_frac, "test": cfg.test_frac}
    return split_by_child(items, fractions, seed=cfg.seed, duplicates=duplicate_groups(cfg.data))


def config_dict(cfg: TrainConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in ("out",)}
