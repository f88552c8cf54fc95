"""``cxr-model train`` with two probes, run by test_train_cli under torchrun (not a test itself).

    python -m torch.distributed.run --nproc_per_node=2 -m tests.imaging.ddp_probe train --data D --out O ...

Environment:
    DDP_PROBE_OUT: folder for ``rank<r>.pt`` = ``{"params": {name: tensor}, "seen": [index, ...]}``,
        each rank's final parameters and the training-set indices its batches drew, in order.
    DDP_PROBE_ORDER: (single process only) a ``rank<r>.pt`` from a two-process run; the loader then
        draws exactly that rank's indices in that order and no bundle is written, so the result is
        what that rank would have learned from its own shard without gradient synchronisation.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from cxr_model import cli
from cxr_model.imaging import finish as calibrate, train as T
from cxr_model.imaging.datasets import SourceDataset


def main(argv: list[str]) -> int:
    seen: list[int] = []
    models = []
    get_item, build = SourceDataset.__getitem__, T.build_model

    def recording_get_item(self, i):
        seen.append(int(i))
        return get_item(self, i)

    def recording_build(arch):
        models.append(build(arch))
        return models[-1]

    SourceDataset.__getitem__ = recording_get_item
    T.build_model = recording_build
    order_file = os.environ.get("DDP_PROBE_ORDER")
    if order_file:
        order = torch.load(order_file, weights_only=True)["seen"]
        loader = T.DataLoader

        def fixed_order_loader(ds, **kw):
            kw.pop("shuffle"), kw.pop("sampler")
            return loader(ds, sampler=order, shuffle=False, **kw)

        T.DataLoader = fixed_order_loader
        calibrate.finish_bundle = lambda *a, **k: {"validation": {"auroc": float("nan")}, "threshold": {"value": 0.5}}
    rc = cli.main(argv)
    rank = int(os.environ.get("RANK", "0"))
    out = Path(os.environ["DDP_PROBE_OUT"])
    out.mkdir(parents=True, exist_ok=True)
    params = {k: v.detach().cpu().clone() for k, v in models[0].named_parameters()}
    torch.save({"params": params, "seen": seen}, out / f"rank{rank}.pt")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
