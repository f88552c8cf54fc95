"""Throughput of `evaluate`'s pipeline against a bare forward of the same model, in one run.

    .venv/bin/python benchmarks/bench_inference.py [--n 512] [--batch-size 64] [--workers 1]

Pipeline: files on disk -> DataLoader workers (read, 224 px source, resize, equalise) -> model
-> calibrated probabilities -> predictions.csv -> metrics.json (run_evaluation + finalize_run, as
`cxr-model evaluate`). The report.html that `evaluate` writes afterwards (bootstrap CIs, figures,
a Grad-CAM failure gallery) is a fixed cost per run, not per image: it is timed and printed apart.
Baseline: the same model on the same images already turned into one ready-made tensor, in the
same batches: the cost of the network alone. Ratio = pipeline images/s / bare images/s (goal >= 0.9).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.data import kermany_items
from cxr_model.imaging.evaluate import finalize_run, run_evaluation
from cxr_model.imaging.predict import predict_batch
from cxr_model.imaging.transforms import load_tensor
from cxr_model.settings import get_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    s = get_settings()
    bundle = load_cxr_bundle(s.cxr_model_dir)
    items = kermany_items(s.kermany_dir, "train")[: args.n]
    ready = torch.stack([load_tensor(it.path, bundle.img_size) for it in items])
    print(f"model {bundle.model_id} ({bundle.arch}, {bundle.img_size} px) on {bundle.device}, "
          f"torch threads {torch.get_num_threads()}, {len(items)} images, batch {args.batch_size}, workers {args.workers}")

    def bare() -> float:
        t = time.perf_counter()
        for i in range(0, len(ready), args.batch_size):
            predict_batch(bundle, ready[i : i + args.batch_size])
        return len(ready) / (time.perf_counter() - t)

    report_s = []

    def pipeline() -> float:
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            run_evaluation(items, bundle, out, batch_size=args.batch_size, workers=args.workers, show_bar=False,
                           finalize=False)
            finalize_run(Path(out), bundle, report=False)
            ips = len(items) / (time.perf_counter() - t)
            t = time.perf_counter()
            from cxr_model.imaging.report.html import write_report

            write_report(out, bundle.meta, bundle=bundle)
            report_s.append(time.perf_counter() - t)
            return ips

    bare()  # warm-up
    b, p = [], []
    for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
        b.append(bare())
        p.append(pipeline())
    bb, pp = max(b), max(p)
    print(f"bare forward     : {bb:8.1f} images/s (best of {args.repeats})")
    print(f"evaluate pipeline: {pp:8.1f} images/s (best of {args.repeats})")
    print(f"ratio pipeline / bare: {pp / bb:.3f} (goal >= 0.9)")
    print(f"report.html afterwards: {min(report_s):.1f} s per run (fixed cost, not per image)")


if __name__ == "__main__":
    main()
