"""`evaluate` at scale: images/s and peak RSS for 600 and 6,000 images against a bare forward.

    .venv/bin/python benchmarks/bench_evaluate.py [--sizes 600 6000] [--workers 1]

For each size the Kermany train films are repeated to reach it. Each measurement runs in a fresh
subprocess so that its peak RSS (ru_maxrss) is its own:
  * pipeline: run_evaluation (DataLoader workers -> model -> predictions streamed to CSV ->
    metrics from the CSV), i.e. `cxr-model evaluate` without the report;
  * bare: the same model on the same batches, each batch already a ready-made tensor (made
    before the clock starts, one batch at a time so the baseline holds one batch in memory too).
Ratio = pipeline images/s / bare images/s (goal >= 0.9); RSS should stay flat from 600 to 6,000.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def _child(mode: str, n: int, batch: int, workers: int) -> dict:
    import torch

    from cxr_model.imaging.data import kermany_items
    from cxr_model.imaging.evaluate import run_evaluation
    from cxr_model.imaging.predict import predict_batch
    from cxr_model.imaging.transforms import load_tensor
    from cxr_model.imaging.bundle import load_cxr_bundle
    from cxr_model.settings import get_settings

    s = get_settings()
    bundle = load_cxr_bundle(s.cxr_model_dir)
    base = kermany_items(s.kermany_dir, "train")
    items = [base[i % len(base)] for i in range(n)]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "bare":
        # the distinct batches, ready-made; reused cyclically so memory does not grow with n
        ready = [torch.stack([load_tensor(it.path, bundle.img_size) for it in base[i : i + batch]])
                 for i in range(0, min(len(base), 640), batch)]
        t = time.perf_counter()
        done, k = 0, 0
        while done < n:
            x = ready[k % len(ready)][: n - done]
            predict_batch(bundle, x)
            done += len(x)
            k += 1
    else:
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            run_evaluation(items, bundle, out, batch_size=batch, workers=workers, show_bar=False, finalize=False)
            from cxr_model.metrics import classification as M
            import pandas as pd

            preds = pd.read_csv(f"{out}/predictions.csv", usecols=["label", "probability"])
            M.summary(preds["label"].to_numpy(), preds["probability"].to_numpy(), bundle.threshold)
    secs = time.perf_counter() - t
    return {"mode": mode, "n": n, "images_per_s": n / secs, "seconds": secs,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": rss0 / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[600, 6000])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], int(args.child[1]), args.batch_size, args.workers)))
        return
    rows = []
    for n in args.sizes:
        for mode in ("bare", "pipeline"):
            r = subprocess.run([sys.executable, __file__, "--child", mode, str(n), "--batch-size", str(args.batch_size),
                                "--workers", str(args.workers)], capture_output=True, text=True, check=True)
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
            x = rows[-1]
            print(f"{mode:8s} n={n:5d}: {x['images_per_s']:7.1f} images/s  peak RSS {x['peak_rss_mb']:7.0f} MB", flush=True)
        b, p = rows[-2], rows[-1]
        print(f"  ratio pipeline / bare at n={n}: {p['images_per_s'] / b['images_per_s']:.3f} (goal >= 0.9)")
    pipe = [r for r in rows if r["mode"] == "pipeline"]
    if len(pipe) >= 2:
        print(f"pipeline peak RSS {pipe[0]['peak_rss_mb']:.0f} MB at n={pipe[0]['n']} -> {pipe[-1]['peak_rss_mb']:.0f} MB "
              f"at n={pipe[-1]['n']} (x{pipe[-1]['peak_rss_mb'] / pipe[0]['peak_rss_mb']:.2f}; flat is ~x1)")


if __name__ == "__main__":
    main()
