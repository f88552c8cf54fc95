"""The shared model under concurrent sessions: threaded results equal the serial ones.

Streamlit runs each session in a thread over one cached bundle. Grad-CAM and the OOD features
hook layers of that one module, so a forward from another thread in the middle of a hook window
used to give a wrong CAM, another image's OOD score or features of the wrong shape. The bundle's
lock (``registry.SharedModel``) serialises every forward; these tests drive the three kinds of
call from 4 threads on real Kermany films and compare with one thread's results.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.ood import batch_features, load_ood
from cxr_model.imaging.predict import predict_batch
from cxr_model.imaging.review import analyse_study
from cxr_model.imaging.transforms import load_tensor
from cxr_model.registry import SharedModel

THREADS, CALLS, N_IMAGES = 4, 20, 8
TOL = 1e-5


@pytest.fixture(scope="module")
def films(kermany_dir):
    files = sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[:N_IMAGES // 2] + \
        sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[:N_IMAGES // 2]
    assert len(files) == N_IMAGES
    return [(f.name, f.read_bytes()) for f in files]


def _analysis(bundle, ood, name, data):
    s = analyse_study(bundle, data, name, "GradCAM", ood)
    assert s.error is None, s.error
    return {"probability": np.array([s.probability]), "cam": s.cam, "ood": np.array([s.ood_score])}


def _batches(bundle, films):
    """Two different batches (first and last 5 films), so a mix-up between them shows."""
    x = torch.stack([load_tensor(d, bundle.img_size, n) for n, d in films])
    return [x[:5], x[-5:]]


def test_bundle_wraps_its_network_and_every_forward_holds_the_lock(cxr_bundle):
    assert isinstance(cxr_bundle.model, SharedModel)
    again = CxrBundle(cxr_bundle.model, cxr_bundle.meta, cxr_bundle.device, cxr_bundle.path)
    assert again.model is cxr_bundle.model  # not wrapped twice
    x = torch.zeros(1, 1, cxr_bundle.img_size, cxr_bundle.img_size)
    with cxr_bundle.model.hold():
        got = []
        t = threading.Thread(target=lambda: got.append(cxr_bundle.model._lock.acquire(timeout=0.2)))
        t.start()
        t.join()
        assert got == [False]  # another thread cannot run a forward while this one holds the lock
        with torch.inference_mode():
            cxr_bundle.model(x)  # re-entrant on the holding thread
    assert cxr_bundle.model._lock.acquire(timeout=1)
    cxr_bundle.model._lock.release()


def test_four_threads_of_mixed_calls_match_the_serial_results(cxr_bundle, films):
    bundle, ood = cxr_bundle, load_ood(cxr_bundle)
    batches = _batches(bundle, films)
    serial_analysis = [_analysis(bundle, ood, n, d) for n, d in films]
    serial_probs = [predict_batch(bundle, b) for b in batches]
    serial_feats = [batch_features(bundle, b) for b in batches]

    start = threading.Barrier(THREADS)
    results: list[tuple[str, int, object]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        start.wait()
        for k in range(CALLS):
            kind, i = (t + k) % 3, (7 * t + 3 * k) % N_IMAGES
            try:
                if kind == 0:
                    out = ("analysis", i, _analysis(bundle, ood, *films[i]))
                elif kind == 1:
                    out = ("predict", i % 2, predict_batch(bundle, batches[i % 2]))
                else:
                    out = ("features", i % 2, batch_features(bundle, batches[i % 2]))
            except Exception as exc:  # collected: a failing thread must fail the test, not vanish
                with lock:
                    errors.append(f"thread {t} call {k}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert errors == []
    assert len(results) == THREADS * CALLS
    wrong = []
    for kind, i, got in results:
        if kind == "analysis":
            ref = serial_analysis[i]
            for key in ref:
                if got[key].shape != ref[key].shape or not np.allclose(got[key], ref[key], rtol=0, atol=TOL):
                    wrong.append(f"analysis {i} {key}")
        else:
            ref = (serial_probs if kind == "predict" else serial_feats)[i]
            if got.shape != ref.shape or not np.allclose(got, ref, rtol=0, atol=TOL):
                wrong.append(f"{kind} {i}: shape {got.shape} vs {ref.shape}")
    assert wrong == [], f"{len(wrong)} of {len(results)} threaded calls differ from the serial result: {wrong[:5]}"
    assert {k for k, _, _ in results} == {"analysis", "predict", "features"}
