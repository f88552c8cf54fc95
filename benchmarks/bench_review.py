"""Cost of reviewing one study, against one bare forward of the model, in one run.

    .venv/bin/python benchmarks/bench_review.py [--repeats 7]

1. File bytes -> probability + Grad-CAM overlay (``review.analyse_study`` + ``explain.overlay``:
   decode, the one preprocessing path, one forward + one backward, OOD score, colour blend)
   against one bare forward of the same model on a ready tensor (goal: ratio <= 3x).
2. A slider change on the real page (AppTest): the opacity slider is moved and the page reruns;
   a global forward hook counts calls of the classifier during that rerun (goal: 0).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch


CLASSIFIERS = {"ResNet", "MobileNetV3", "EfficientNet", "RegNet"}


def _median_s(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_bytes_to_overlay(repeats: int) -> None:
    from cxr_model.imaging.explain import overlay
    from cxr_model.imaging.ood import OodError, load_ood
    from cxr_model.imaging.review import analyse_study
    from cxr_model.imaging.transforms import load_tensor
    from cxr_model.imaging.bundle import load_cxr_bundle
    from cxr_model.settings import get_settings

    s = get_settings()
    bundle = load_cxr_bundle(s.cxr_model_dir, device=s.device)
    try:
        ood = load_ood(bundle)
    except OodError:
        ood = None
    print(f"model {bundle.model_id}, img_size {bundle.img_size}, device {bundle.device}, "
          f"torch threads {torch.get_num_threads()}, OOD {'on' if ood else 'off'}")
    files = [sorted((s.kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0],
             sorted((s.dicom_dir / "rsna").glob("*.dcm"))[0]]
    for f in files:
        data = f.read_bytes()
        x = load_tensor(data, bundle.img_size, f.name).unsqueeze(0).to(bundle.device)

        def bare():
            with torch.inference_mode():
                bundle.model(x)

        def review():
            st = analyse_study(bundle, data, f.name, "GradCAM", ood)
            overlay(st.display, st.cam, 0.4)

        tb, tr = _median_s(bare, repeats), _median_s(review, repeats)
        print(f"{f.suffix:6s} {len(data) / 1e3:7.0f} kB  bare forward {tb * 1e3:7.1f} ms   "
              f"bytes -> probability + Grad-CAM overlay {tr * 1e3:7.1f} ms   ratio {tr / tb:4.2f}x (goal <= 3x)")


def bench_slider(repeats: int) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("CXR_STATE_DIR", tempfile.mkdtemp())
    calls = {"n": 0}

    def count(module, args, output):
        if module.__class__.__name__ in CLASSIFIERS:  # the whole network, not its sub-modules
            calls["n"] += 1

    handle = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        from cxr_model.settings import get_settings

        f = sorted((get_settings().kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
        at.run()
        at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
        n0 = calls["n"]
        t = time.perf_counter()
        at.run()
        first, n_first = time.perf_counter() - t, calls["n"] - n0
        times, n_slider = [], 0
        for i in range(repeats):
            n0 = calls["n"]
            at.slider(key="cam_opacity").set_value(round(0.1 + 0.8 * (i % 5) / 4, 2))
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
            n_slider += calls["n"] - n0
        assert not at.exception, at.exception
    finally:
        handle.remove()
    print(f"page, first view of the upload: {first:6.2f} s with {n_first} classifier forward calls "
          "(study list + CAM + ROAD faithfulness)")
    print(f"page, opacity slider change:    {statistics.median(times):6.2f} s median rerun, "
          f"{n_slider} classifier forward calls over {repeats} changes (goal: 0)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    bench_bytes_to_overlay(args.repeats)
    bench_slider(args.repeats)


if __name__ == "__main__":
    main()
