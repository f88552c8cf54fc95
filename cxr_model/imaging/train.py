"""Training the pneumonia classifier from scratch on the Kermany radiographs.

Run as ``cxr-model train --data DIR --out DIR`` or, data-parallel, as
``torchrun --nproc_per_node=N -m cxr_model train ...`` (DistributedDataParallel; gloo on CPU,
nccl on CUDA). Rank 0 validates, keeps the best state by validation AUROC (early stopping),
calibrates, chooses the threshold and writes the bundle.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from cxr_model.imaging import data as D
from cxr_model.imaging.network import build_model, pick_device
from cxr_model.imaging.shift import SHIFTS
from cxr_model.imaging.transforms import EvalTransform, TrainTransform


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


class SourceDataset(Dataset):
    """In-memory uint8 sources ``(N, 1, 224, 224)`` with labels, transformed on access."""

    def __init__(self, sources: torch.Tensor, labels: torch.Tensor, transform):
        self.sources, self.labels, self.transform = sources, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.sources[i]), self.labels[i]


def _is_dist() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _log(msg: str) -> None:
    if _rank() == 0:
        print(msg, flush=True)


@torch.inference_mode()
def predict_logits(model: nn.Module, sources: torch.Tensor, img_size: int, device, batch: int = 128, shift=None) -> np.ndarray:
    """Raw logits for uint8 sources, optionally after an acquisition shift (see ``shift.py``)."""
    model.eval()
    tf = EvalTransform(img_size)
    out = []
    for i in range(0, len(sources), batch):
        src = sources[i : i + batch]
        if shift is not None:
            src = torch.stack([shift(s) for s in src])
        out.append(model(tf(src).to(device)).float().squeeze(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


SELECTION_SHIFTS = ("darker (exposure -30 %)", "low contrast (x0.6)", "gamma 1.6", "tight crop (80 %)")


def validation_auroc(net: nn.Module, src_val: torch.Tensor, y_val: np.ndarray, cfg: TrainConfig, device) -> float:
    """The model-selection score: AUROC on the validation split, by default pooled with the same
    images under four acquisition shifts (a validation built to be hard: the clean split's AUROC
    saturates near 0.995 and cannot tell epochs apart, while shift robustness is what carries
    to other sites)."""
    from cxr_model.imaging import calibrate

    logits = [predict_logits(net, src_val, cfg.img_size, device)]
    if cfg.select_on == "hard":
        logits += [predict_logits(net, src_val, cfg.img_size, device, shift=SHIFTS[k]) for k in SELECTION_SHIFTS]
    return calibrate.auroc(np.concatenate([y_val] * len(logits)), np.concatenate(logits))


def split_data(cfg: TrainConfig) -> dict[str, list[D.Item]]:
    items = D.kermany_items(cfg.data, "train")
    if cfg.max_items:
        rng = np.random.default_rng(cfg.seed)
        items = [items[i] for i in sorted(rng.choice(len(items), min(cfg.max_items, len(items)), replace=False))]
    fractions = {"train": 1 - cfg.val_frac - cfg.test_frac, "val": cfg.val_frac, "test": cfg.test_frac}
    return D.split_by_child(items, fractions, seed=cfg.seed, duplicates=D.duplicate_groups(cfg.data))


def train(cfg: TrainConfig) -> dict:
    """Train, validate, calibrate, pick the threshold and write the bundle to ``cfg.out``.

    Returns:
        The bundle's metadata (rank 0) or ``{}`` (other ranks).
    """
    from cxr_model.imaging import calibrate

    if cfg.adult_data:
        from cxr_model.imaging.train_mixed import train_mixed

        return train_mixed(cfg)
    started = time.time()
    if _is_dist() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
        dist.init_process_group(backend)
    rank, world = _rank(), (dist.get_world_size() if dist.is_initialized() else 1)
    if torch.cuda.is_available() and cfg.device != "cpu":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = pick_device(cfg.device or "cpu")
    torch.manual_seed(cfg.seed + rank)

    parts = split_data(cfg)
    _log(f"split by child: " + ", ".join(f"{k} {len(v)} ({sum(i.label for i in v)} pneumonia)" for k, v in parts.items()))
    src_train, err_train = D.load_sources(parts["train"], progress=rank == 0)
    if err_train:
        raise RuntimeError("unreadable training files: " + "; ".join(m for _, m in err_train[:5]))
    y_train = torch.tensor([it.label for it in parts["train"]], dtype=torch.float32)
    ds = SourceDataset(src_train, y_train, TrainTransform(cfg.img_size))
    sampler = DistributedSampler(ds, shuffle=True, seed=cfg.seed) if world > 1 else None
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=cfg.workers, drop_last=len(ds) > cfg.batch_size * world, persistent_workers=cfg.workers > 0)

    model = build_model(cfg.arch).to(device)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    net = model.module if world > 1 else model
    # Class imbalance (74 % pneumonia): weight the minority class so both count equally.
    n_pos = float(y_train.sum())
    pos_weight = torch.tensor([(len(y_train) - n_pos) / max(n_pos, 1.0)], device=device)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = min(len(loader), cfg.max_steps) if cfg.max_steps else len(loader)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, cfg.epochs * steps_per_epoch), pct_start=0.2)

    if rank == 0:
        src_val, _ = D.load_sources(parts["val"], progress=True)
        y_val = np.array([it.label for it in parts["val"]])
    best = {"auroc": -1.0, "epoch": -1, "state": None}
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0, total, seen = time.time(), 0.0, 0
        bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=rank != 0, leave=False, mininterval=30)
        for step, (x, y) in enumerate(bar):
            if step >= steps_per_epoch:
                break
            x, y = x.to(device, non_blocking=True), y.to(device).unsqueeze(1)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(y)
            seen += len(y)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        stop = torch.zeros(1)
        if rank == 0:
            auc = validation_auroc(net, src_val, y_val, cfg, device)
            history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), f"val_auroc_{cfg.select_on}": auc, "seconds": time.time() - t0})
            _log(f"epoch {epoch + 1}: loss {total / max(seen, 1):.4f}  val AUROC ({cfg.select_on}) {auc:.4f}  ({time.time() - t0:.0f} s)")
            if auc > best["auroc"]:
                best = {"auroc": auc, "epoch": epoch + 1, "state": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
            elif epoch + 1 - best["epoch"] >= cfg.patience:
                _log(f"early stop: no validation AUROC gain for {cfg.patience} epochs")
                stop[0] = 1
        if world > 1:
            dist.broadcast(stop, src=0)
        if stop.item():
            break

    meta: dict = {}
    if rank == 0:
        net.load_state_dict(best["state"])
        meta = calibrate.finish_bundle(cfg, net, parts, src_val, y_val, device, history, best, time.time() - started)
        _log(json.dumps(meta["validation"], indent=1))
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return meta


def config_dict(cfg: TrainConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in ("out",)}

