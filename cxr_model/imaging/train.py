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

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from cxr_model.imaging import data as D, finish as calibrate
from cxr_model.imaging.config import TrainConfig, split_data
from cxr_model.imaging.datasets import SourceDataset
from cxr_model.imaging.network import build_model, pick_device
from cxr_model.imaging.predict import predict_logits
from cxr_model.imaging.shift import SELECTION_SHIFTS, SHIFTS
from cxr_model.imaging.train_mixed import train_mixed
from cxr_model.imaging.transforms import TrainTransform, source_size
from cxr_model.metrics.classification import compute_auroc as auroc


def _is_dist() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _log(msg: str) -> None:
    if _rank() == 0:
        print(msg, flush=True)


def validation_auroc(net: nn.Module, src_val: torch.Tensor, y_val: np.ndarray, cfg: TrainConfig, device) -> float:
    """The model-selection score: AUROC on the validation split, by default pooled with the same
    images under four acquisition shifts (a validation built to be hard: the clean split's AUROC
    saturates near 0.995 and cannot tell epochs apart, while shift robustness is what carries
    to other sites)."""

    logits = [predict_logits(net, src_val, cfg.img_size, device)]
    if cfg.select_on == "hard":
        logits += [predict_logits(net, src_val, cfg.img_size, device, shift=SHIFTS[k]) for k in SELECTION_SHIFTS]
    return auroc(np.concatenate([y_val] * len(logits)), np.concatenate(logits))


def train(cfg: TrainConfig) -> dict:
    """Train, validate, calibrate, pick the threshold and write the bundle to ``cfg.out``.

    Returns:
        The bundle's metadata (rank 0) or ``{}`` (other ranks).
    """

    if cfg.adult_data:
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
    _log("split by child: " + ", ".join(f"{k} {len(v)} ({sum(i.label for i in v)} pneumonia)" for k, v in parts.items()))
    src_train, err_train = D.load_sources(parts["train"], progress=rank == 0, size=source_size(cfg.img_size))
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
        src_val, _ = D.load_sources(parts["val"], progress=True, size=source_size(cfg.img_size))
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


