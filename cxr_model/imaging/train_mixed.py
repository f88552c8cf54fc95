"""Model 2: fine-tuning the classifier on children (Kermany) and adults (NIH) together.

Run as ``cxr-model train --data KERMANY --adult-data NIH_ADULT --init-from BUNDLE --out DIR``.
Single process (no DDP). Each epoch draws ``mix`` films of each population, half of each class
(adults, the smaller set, are drawn with replacement), so neither population nor class
dominates the gradient. After every epoch both validation sets are scored; the selection score
is the mean of the two populations' AUROCs. ``checkpoints/last.pt`` and ``checkpoints/best.pt``
are written every epoch, so a run cut short still leaves its best model; ``--finish-only``
builds the bundle from ``best.pt`` without training.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from cxr_model.imaging import data as D
from cxr_model.imaging.config import split_data
from cxr_model.imaging.finish_mixed import finish_mixed
from cxr_model.imaging.network import build_model, pick_device
from cxr_model.imaging.predict import predict_logits
from cxr_model.imaging.splits import read_splits, split_by_patient
from cxr_model.imaging.transforms import TrainTransform, source_size
from cxr_model.metrics.classification import compute_auroc as auroc
from cxr_model.registry import read_state

POPULATIONS = ("child", "adult")


def split_mixed(cfg) -> dict[str, dict[str, list[D.Item]]]:
    """``{"child": {"train", "val", "test"}, "adult": {...}}``.

    Children: the parts recorded in ``cfg.kermany_splits`` (a bundle's ``splits.csv``, so that
    held-out figures stay comparable with that bundle), else the seeded child-level split.
    Adults: a seeded split by ``patient_id`` with the same fractions.
    """

    if cfg.kermany_splits:
        child = read_splits(cfg.kermany_splits, cfg.data)
        child = {k: child.get(k, []) for k in ("train", "val", "test")}
    else:
        child = split_data(cfg)
    fractions = {"train": 1 - cfg.val_frac - cfg.test_frac, "val": cfg.val_frac, "test": cfg.test_frac}
    adult = split_by_patient(D.nih_items(cfg.adult_data), fractions, seed=cfg.seed)
    parts = {"child": child, "adult": adult}
    if cfg.max_items:  # smoke runs and tests: a seeded subset of every part
        rng = np.random.default_rng(cfg.seed)
        parts = {pop: {k: [v[i] for i in sorted(rng.choice(len(v), min(cfg.max_items, len(v)), replace=False))]
                       for k, v in p.items()} for pop, p in parts.items()}
    return parts


class PopulationMixSampler(Sampler):
    """Per epoch ``per_pop`` indices of each population, half of each class, shuffled.

    ``per_pop`` is one count for every population or a ``{population code: count}`` dict.
    A class with fewer films than its quota is drawn with replacement; otherwise without.
    ``weights`` (one per film, optional) makes draws within a population and class
    proportional to it, with replacement (e.g. radiologist-confirmed labels drawn more often).
    """

    def __init__(self, pops: np.ndarray, labels: np.ndarray, per_pop, seed: int = 0, weights: np.ndarray | None = None):
        self.pops, self.labels, self.seed, self.epoch = pops, labels, seed, 0
        codes = np.unique(pops)
        self.per_pop = {int(c): int(per_pop[int(c)] if isinstance(per_pop, dict) else per_pop) for c in codes}
        self.weights = None if weights is None or np.allclose(weights, weights[0]) else np.asarray(weights, float)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(2 * (k // 2) for k in self.per_pop.values())

    def __iter__(self):
        rng = np.random.default_rng(self.seed * 1000 + self.epoch)
        out = []
        for pop in np.unique(self.pops):
            for label in (0, 1):
                idx = np.flatnonzero((self.pops == pop) & (self.labels == label))
                k = self.per_pop[int(pop)] // 2
                if self.weights is not None and not np.allclose(self.weights[idx], self.weights[idx][0]):
                    w = self.weights[idx]
                    out.append(rng.choice(idx, k, replace=True, p=w / w.sum()))
                    continue
                out.append(rng.choice(idx, k, replace=k > len(idx)))
        order = np.concatenate(out)
        rng.shuffle(order)
        return iter(order.tolist())


class _Train(torch.utils.data.Dataset):
    def __init__(self, sources, labels, transform):
        self.sources, self.labels, self.transform = sources, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.sources[i]), self.labels[i]


def load_parts(parts: dict[str, dict[str, list[D.Item]]], img_size: int = 224) -> dict[str, dict[str, tuple[torch.Tensor, np.ndarray]]]:
    """Decode every part to uint8 sources (``source_size(img_size)``); unreadable files stop the run with their names."""
    out: dict = {}
    for pop, p in parts.items():
        out[pop] = {}
        for name, items in p.items():
            src, errors = D.load_sources(items, size=source_size(img_size))
            if errors:
                raise RuntimeError(f"{pop} {name}: unreadable files: " + "; ".join(m for _, m in errors[:5]))
            out[pop][name] = (src, np.array([it.label for it in items]))
    return out


def _init_state(net: nn.Module, bundle_dir: str) -> None:
    state, meta = read_state(bundle_dir)  # sha256-checked, weights_only=True
    net.load_state_dict(state)
    print(f"initialised from {meta['name']} {meta['version']} ({bundle_dir})", flush=True)


def selection_subset(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Seeded, class-stratified indices of ``n`` of ``labels`` (all when ``n`` is 0 or too big)."""
    if not n or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(labels == c), max(1, round(n * np.mean(labels == c))), replace=False) for c in (0, 1)]
    return np.sort(np.concatenate(keep))


def validation_scores(net, sources, img_size: int, device, subsets: dict | None = None) -> dict[str, float]:
    scores = {}
    for pop in POPULATIONS:
        src, y = sources[pop]["val"]
        idx = subsets[pop] if subsets else np.arange(len(y))
        scores[pop] = auroc(y[idx], predict_logits(net, src[idx], img_size, device))
    scores["mean"] = float(np.mean([scores[p] for p in POPULATIONS]))
    return scores


def train_mixed(cfg) -> dict:
    """Train (unless ``cfg.finish_only``), then calibrate, choose the threshold and write the bundle."""
    started = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device or "cpu")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    parts = split_mixed(cfg)
    for pop, p in parts.items():
        print(f"{pop}: " + ", ".join(f"{k} {len(v)} ({sum(i.label for i in v)} pneumonia)" for k, v in p.items()), flush=True)
    sources = load_parts(parts, cfg.img_size)
    print(f"decoded in {time.time() - started:.0f} s", flush=True)

    net = build_model(cfg.arch).to(device)
    if cfg.finish_only:
        ck = torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(ck["state"])
        history = json.loads((ckpt_dir / "history.json").read_text())
        best = {"epoch": int(ck["epoch"]), "score": float(ck["score"])}
    else:
        if cfg.init_from:
            _init_state(net, cfg.init_from)
        history, best = _fit(cfg, net, sources, device, ckpt_dir, started,
                             confirmed_weights(parts["adult"]["train"], cfg.confirmed_weight))
        ck = torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(ck["state"])

    return finish_mixed(cfg, net, parts, sources, device, history, best, time.time() - started)


def confirmed_weights(items: list[D.Item], weight: float) -> np.ndarray:
    """Draw weight per adult film: ``weight`` where RSNA radiologists confirmed the label, else 1.

    NIH-only labels were mined from reports and are noisier (nih_adult/README.md).
    """
    return np.array([weight if it.extra.get("confirmed_by") in ("rsna", "both") else 1.0 for it in items])


def _fit(cfg, net, sources, device, ckpt_dir: Path, started: float, adult_weights: np.ndarray | None = None):
    xs = [sources[p]["train"][0] for p in POPULATIONS]
    ys = [sources[p]["train"][1] for p in POPULATIONS]
    pops = np.concatenate([np.full(len(y), i) for i, y in enumerate(ys)])
    labels = np.concatenate(ys)
    ds = _Train(torch.cat(xs), torch.tensor(labels, dtype=torch.float32), TrainTransform(cfg.img_size, site_augment=cfg.site_augment))
    mix = cfg.mix or 1500
    weights = np.concatenate([np.ones(len(ys[0])), adult_weights]) if adult_weights is not None else None
    sampler = PopulationMixSampler(pops, labels, {0: mix, 1: cfg.mix_adult or mix}, seed=cfg.seed, weights=weights)
    loader = DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=True)
    steps = min(len(loader), cfg.max_steps) if cfg.max_steps else len(loader)
    subsets = {"child": selection_subset(sources["child"]["val"][1], cfg.select_child_n, cfg.seed),
               "adult": np.arange(len(sources["adult"]["val"][1]))}
    # The sampler balances classes, so the loss is unweighted; Platt on validation sets the prior.
    loss_fn = nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    budget_s = cfg.time_budget_min * 60.0
    if budget_s:
        t_fit = time.time()

        def set_lr() -> bool:
            """Cosine LR on the elapsed fraction of the budget; False once the budget is spent."""
            frac = (time.time() - t_fit) / budget_s
            lr = cfg.lr * (0.04 + 0.96 * frac / 0.05) if frac < 0.05 else cfg.lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * min(1.0, (frac - 0.05) / 0.95))))
            for g in opt.param_groups:
                g["lr"] = lr
            return frac < 1.0
        sched = None
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, cfg.epochs * steps), pct_start=0.15)
    history, best, out_of_time = [], {"epoch": -1, "score": -1.0}, False
    for epoch in range(cfg.epochs):
        net.train()
        sampler.set_epoch(epoch)
        t0, total, seen = time.time(), 0.0, 0
        for step, (x, y) in enumerate(loader):
            if step >= steps:
                break
            if budget_s and not set_lr():
                out_of_time = True
                break
            loss = loss_fn(net(x.to(device)), y.to(device).unsqueeze(1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.item() * len(y)
            seen += len(y)
            if step % 10 == 0:
                print(f"  epoch {epoch + 1} step {step}/{steps} loss {total / seen:.4f} ({(time.time() - t0) / (step + 1):.2f} s/step)", flush=True)
        t_train = time.time() - t0
        if out_of_time and not seen:  # the budget ran out between epochs: nothing new to score
            print(f"time budget of {cfg.time_budget_min:g} min spent", flush=True)
            break
        scores = validation_scores(net, sources, cfg.img_size, device, subsets)
        row = {"epoch": epoch + 1, "train_loss": total / max(seen, 1), "images": seen, "lr_end": opt.param_groups[0]["lr"], **{f"val_auroc_{k}": v for k, v in scores.items()},
               "train_seconds": t_train, "seconds": time.time() - t0}
        history.append(row)
        state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        torch.save({"state": state, "epoch": epoch + 1, "score": scores["mean"]}, ckpt_dir / "last.pt")
        if scores["mean"] > best["score"]:
            best = {"epoch": epoch + 1, "score": scores["mean"]}
            torch.save({"state": state, "epoch": epoch + 1, "score": scores["mean"]}, ckpt_dir / "best.pt")
        (ckpt_dir / "history.json").write_text(json.dumps(history, indent=1))
        print(f"epoch {epoch + 1}: loss {row['train_loss']:.4f}  val AUROC child {scores['child']:.4f} adult {scores['adult']:.4f} "
              f"mean {scores['mean']:.4f}  ({row['seconds']:.0f} s; {(time.time() - started) / 60:.1f} min so far)", flush=True)
        if out_of_time:
            print(f"time budget of {cfg.time_budget_min:g} min spent", flush=True)
            break
        if epoch + 1 - best["epoch"] >= cfg.patience:
            print(f"early stop: no validation gain for {cfg.patience} epochs", flush=True)
            break
    return history, best
