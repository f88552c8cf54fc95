"""Training (single process and torchrun DDP), the bundle it writes, and the predict/evaluate CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from cxr_model.cli import main
from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.predict import predict_source
from cxr_model.registry import BundleError, read_state
from cxr_model.settings import PROJECT_ROOT
from tests.imaging.synthetic import jpeg_bytes, phantom

TINY = ["--max-items", "120", "--epochs", "1", "--img-size", "64", "--batch-size", "6"]


def _run(args, env_extra=None, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=400, **kw)


@pytest.fixture(scope="module")
def ddp_run(kermany_dir, tmp_path_factory):
    """Two torchrun CPU processes (gloo) train for one epoch through ``cxr-model train`` with the
    probes of ``tests/imaging/ddp_probe.py``; then one process trains on rank 0's batches alone."""
    tmp = tmp_path_factory.mktemp("ddp")
    probe = ["-m", "tests.imaging.ddp_probe", "train", "--data", str(kermany_dir), "--device", "cpu", *TINY]
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *probe,
                "--out", str(tmp / "bundle")], env_extra={"DDP_PROBE_OUT": str(tmp / "two")})
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-3000:]
    one = _run([sys.executable, *probe, "--out", str(tmp / "alone-bundle")],
               env_extra={"DDP_PROBE_OUT": str(tmp / "alone"), "DDP_PROBE_ORDER": str(tmp / "two" / "rank0.pt")})
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-3000:]
    load = lambda f: torch.load(f, weights_only=True)  # noqa: E731
    return tmp / "bundle", [load(tmp / "two" / f"rank{r}.pt") for r in (0, 1)], load(tmp / "alone" / "rank0.pt")


def test_torchrun_two_cpu_processes_train_and_write_a_loadable_bundle(ddp_run):
    out, _, _ = ddp_run
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["world_size"] == 2
    assert meta["threshold"]["rule"].startswith("Youden")
    v = meta["validation"]
    assert v["n"] == meta["training"]["counts"]["val"]["n"] > 0 and "auroc_ci95" in v
    assert (out / "MODEL_CARD.md").read_text().count("Decision support, not a diagnosis") == 1
    bundle = load_cxr_bundle(out, device="cpu")
    assert bundle.img_size == 64 and not bundle.model.training


def test_ddp_ranks_see_disjoint_shards_of_the_training_set(ddp_run):
    _, (r0, r1), _ = ddp_run
    s0, s1 = r0["seen"], r1["seen"]
    assert len(s0) == len(s1) == 7 * 6  # 85 training images: 43 per rank, seven full batches of 6
    assert len(set(s0)) == len(s0) and len(set(s1)) == len(s1)  # no image twice in an epoch
    assert not set(s0) & set(s1)  # each rank its own half


def test_ddp_ranks_end_with_identical_weights_unlike_one_rank_alone(ddp_run):
    # Parameters only: DDP broadcasts rank 0's BatchNorm buffers before each forward, then each
    # rank updates its running statistics from its own batch, so buffers legitimately differ.
    _, (r0, r1), alone = ddp_run
    assert r0["params"].keys() == r1["params"].keys() == alone["params"].keys()
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    assert alone["seen"] == r0["seen"]  # the single process drew exactly rank 0's batches
    diff = max(float((r0["params"][k] - alone["params"][k]).abs().max()) for k in r0["params"])
    assert diff > 1e-4  # rank 1's gradients moved the synchronised weights


def test_bundle_with_altered_weights_is_refused(tmp_path, settings):
    src = settings.cxr_model_dir
    for f in ("model.pt", "metadata.json"):
        (tmp_path / f).write_bytes((src / f).read_bytes())
    with open(tmp_path / "model.pt", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="sha256"):
        read_state(tmp_path)


def test_bundled_model_is_small_verified_and_documented(settings):
    d = settings.cxr_model_dir
    assert (d / "model.pt").stat().st_size < 50 * 2**20
    state, meta = read_state(d)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    for key in ("architecture", "classes", "input", "threshold", "calibration", "training", "validation", "sha256", "torch_version"):
        assert key in meta, key
    assert meta["validation"]["n"] > 500  # a real validation split, not a smoke run
    assert "rule" in meta["threshold"] and meta["input"]["img_size"] >= 128
    assert (d / "MODEL_CARD.md").exists()


def test_predict_reports_every_file_and_fails_on_any_bad_one(kermany_dir, tmp_path, capsys, cxr_bundle):
    good = next((kermany_dir / "train" / "PNEUMONIA").glob("*.jpeg"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(jpeg_bytes(phantom())[:300])
    assert main(["predict", str(good), str(bad), "--json"]) == 1
    lines = [json.loads(l) for l in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 2
    expected = predict_source(cxr_bundle, good)
    assert lines[0]["probability"] == pytest.approx(expected.probability, abs=1e-6)
    assert (lines[0]["label"], lines[0]["model"]) == (expected.label, cxr_bundle.model_id)
    assert lines[1]["error"].startswith(f"{bad}: ") and lines[1]["probability"] is None
    assert main(["predict", str(good)]) == 0
    assert "P(pneumonia)=" in capsys.readouterr().out


def test_evaluate_writes_metrics_predictions_and_errors(kermany_dir, tmp_path):
    # a CSV set (paths relative to the CSV): the official val films, linked, plus two unreadable files
    rows = ["path,label,site"]
    for p in sorted((kermany_dir / "val").rglob("*.jpeg")):
        link = tmp_path / "films" / p.name
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(p)
        rows.append(f"films/{p.name},{p.parent.name},{'A' if len(rows) % 2 else 'B'}")
    (tmp_path / "films" / "empty.png").write_bytes(b"")
    rows += ["films/empty.png,NORMAL,A", "films/missing.png,PNEUMONIA,B"]
    csv_path = tmp_path / "set.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["evaluate", "--data", str(csv_path), "--out", str(out), "--workers", "2", "--batch-size", "5"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("n", "n_errors", "auroc", "auroc_ci95", "sensitivity", "specificity", "accuracy", "ppv", "npv", "threshold", "ece", "model"):
        assert key in m, key
    assert m["n"] == 16 and m["n_errors"] == 2
    assert m["auroc_ci95"][0] <= m["auroc"] <= m["auroc_ci95"][1]
    preds = (out / "predictions.csv").read_text().strip().splitlines()
    assert preds[0].startswith("path,label,probability,predicted") and len(preds) == 17
    assert preds[0].endswith(",site") and {p.rsplit(",", 1)[1] for p in preds[1:]} == {"A", "B"}  # for subgroups
    assert (out / "report.html").stat().st_size > 10_000
    errors = (out / "errors.csv").read_text()
    assert "empty.png: file is empty" in errors and "missing.png: file not found" in errors


def test_torchrun_evaluate_shards_and_gathers_every_file(kermany_dir, tmp_path):
    out = tmp_path / "run"
    r = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "-m", "cxr_model", "evaluate", "--data", str(kermany_dir / "val"), "--out", str(out), "--workers", "0"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["shards"] == 2 and m["n"] == 16 and m["n_errors"] == 0
    paths = [l.split(",")[0] for l in (out / "predictions.csv").read_text().splitlines()[1:]]
    assert len(paths) == len(set(paths)) == 16
    assert (out / "shards" / "rank1" / "predictions.csv").exists()
