"""Stays per second through reader + grid + LSTM for every stay in a PhysioNet 2012 set.

Usage: ``python benchmarks/bench_vitals.py [--records DIR] [--model DIR] [--threads N]``.
Reports the stays per second end to end (read file -> clean -> hourly grid -> features -> risk at
all 48 hours) and the model's share of the time (features + forward pass). CPU, one process. Then re-scoring a
ward of ``--ward`` stays x 48 h from their grids (``bundle.risk``: features, LSTM, trees,
calibration) against one bare batched pass (LSTM forward + tree walk on inputs already built). The two
are timed ``--repeats`` times, alternately (so a busy machine slows both alike): ``ward_over_bare`` is
best over best, ``ward_over_bare_median`` the median of each repeat's ratio (a ward and the bare pass
timed back to back).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cxr_model.settings import get_settings
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import read_record
from cxr_model.vitals.summary import stack_features


def main() -> None:
    s = get_settings()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--records", default=str(s.physionet_dir / "set-a"))
    p.add_argument("--model", default=str(s.vitals_model_dir))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--ward", type=int, default=1000, help="stays in the ward re-scoring comparison")
    p.add_argument("--repeats", type=int, default=5, help="timings of the ward and of the bare pass (best counts)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_vitals_bundle(args.model)
    paths = sorted(Path(args.records).glob("*.txt"))
    t0 = time.perf_counter()
    grids, errors = [], 0
    for path in paths:
        try:
            grids.append(to_grid(read_record(path)))
        except ValueError:
            errors += 1
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    risk = np.concatenate([bundle.risk(grids[i:i + args.batch_size]) for i in range(0, len(grids), args.batch_size)])
    t_model = time.perf_counter() - t1
    total = t_read + t_model
    ward = grids[: args.ward]  # re-scoring a ward (grids in hand) vs one bare batched pass of the model
    x = bundle.features(ward)
    s_feat = stack_features(ward, n_features=bundle.trees.n_features) if bundle.trees is not None else None

    def bare() -> None:
        with torch.inference_mode():
            bundle.model(x)
        if s_feat is not None:
            bundle.trees.decision_function(s_feat.reshape(-1, s_feat.shape[-1]))

    walls: dict[str, list[float]] = {"ward": [], "bare": []}
    for _ in range(max(1, args.repeats)):
        for name, run in (("ward", lambda: bundle.risk(ward)), ("bare", bare)):
            t2 = time.perf_counter()
            run()
            walls[name].append(time.perf_counter() - t2)
    t_ward, t_bare = min(walls["ward"]), min(walls["bare"])
    each = [w / b for w, b in zip(walls["ward"], walls["bare"])]
    out = {"ward_stays": len(ward), "ward_rescore_s": round(t_ward, 2), "bare_pass_s": round(t_bare, 2),
           "ward_over_bare": round(t_ward / t_bare, 2),
           "ward_over_bare_median": round(float(np.median(each)), 2), "ward_over_bare_each": [round(r, 2) for r in each],
           "stays": len(grids), "errors": errors, "threads": args.threads, "model": bundle.model_id,
           "reader_grid_s": round(t_read, 2), "model_s": round(t_model, 2), "total_s": round(total, 2),
           "stays_per_s": round(len(grids) / total, 1), "model_share": round(t_model / total, 3),
           "risk_shape": list(risk.shape)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
