"""The one bundle loader: sha256 checked, weights never unpickled as code, clear errors, metadata."""
from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch
from torch import nn

from cxr_model.imaging.bundle import CxrBundle, load_cxr_bundle
from cxr_model.imaging.network import build_model
from cxr_model.registry import (
    METADATA, WEIGHTS, BundleError, metadata_or_none, model_id, read_metadata, read_state, save_bundle, sha256_file,
)


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = bytes(range(256)) * 9000  # 2.3 MB: more than one 1 MiB chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_save_bundle_writes_weights_metadata_hash_and_card(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3).t(), "b": torch.ones(2, requires_grad=True)}
    out = save_bundle(tmp_path / "nested" / "b", state, {"task": "toy", "name": "t"}, card=lambda meta: "# card\n")
    meta = json.loads((out / METADATA).read_text())
    assert meta["task"] == "toy" and meta["sha256"] == sha256_file(out / WEIGHTS)
    assert meta["torch_version"] == torch.__version__.split("+")[0]
    assert (out / "MODEL_CARD.md").read_text() == "# card\n"
    loaded, meta2 = read_state(out)
    assert meta2 == meta
    assert set(loaded) == {"w", "b"} and torch.equal(loaded["w"], state["w"]) and loaded["w"].is_contiguous()
    assert not loaded["b"].requires_grad
    assert not (save_bundle(tmp_path / "nocard", state, {}) / "MODEL_CARD.md").exists()


def _copy_bundle(src, dst):
    for f in (WEIGHTS, METADATA):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / METADATA).unlink(), "metadata.json: model metadata not found"),
    (lambda d: (d / METADATA).write_text("{not json"), "metadata.json: invalid JSON"),
    (lambda d: (d / WEIGHTS).unlink(), "model.pt: model weights not found"),
    (lambda d: (d / WEIGHTS).write_bytes((d / WEIGHTS).read_bytes()[:-1]), "model.pt: sha256"),
])
def test_damaged_bundles_are_refused_naming_the_file(tmp_path, settings, damage, message):
    d = _copy_bundle(settings.cxr_model_dir, tmp_path)
    damage(d)
    with pytest.raises(BundleError, match=message.replace(".", r"\.")):
        read_state(d)
    assert str(tmp_path) in str(pytest.raises(BundleError, read_state, d).value)


def test_missing_sha256_in_metadata_is_refused(tmp_path):
    save_bundle(tmp_path, {"w": torch.zeros(1)}, {})
    meta = json.loads((tmp_path / METADATA).read_text())
    del meta["sha256"]
    (tmp_path / METADATA).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="does not match metadata"):
        read_state(tmp_path)


class _Evil:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Evil.marker),))


def test_weights_that_are_a_pickled_program_are_not_run(tmp_path):
    _Evil.marker = str(tmp_path / "pwned")
    torch.save({"w": _Evil()}, tmp_path / WEIGHTS)  # a valid torch file whose pickle calls Path.touch
    (tmp_path / METADATA).write_text(json.dumps({"sha256": sha256_file(tmp_path / WEIGHTS)}))
    with pytest.raises(pickle.UnpicklingError):
        read_state(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_loaded_bundle_is_in_eval_mode_with_its_metadata(cxr_bundle, settings):
    meta = read_metadata(settings.cxr_model_dir)
    assert not cxr_bundle.model.training
    assert cxr_bundle.model_id == f"{meta['name']}@{meta['version']}"
    assert cxr_bundle.img_size == meta["input"]["img_size"] and isinstance(cxr_bundle.img_size, int)
    assert cxr_bundle.threshold == meta["threshold"]["value"] and cxr_bundle.arch == meta["architecture"]
    assert cxr_bundle.path == settings.cxr_model_dir and cxr_bundle.device.type == "cpu"


def test_bundle_of_another_task_or_architecture_is_refused(tmp_path):
    save_bundle(tmp_path / "v", {"w": torch.zeros(1)}, {"task": "vitals-mortality"})
    with pytest.raises(BundleError, match=r"v: not a chest X-ray bundle \(task 'vitals-mortality'\)$"):
        load_cxr_bundle(tmp_path / "v", device="cpu")
    save_bundle(tmp_path / "x", {"w": torch.zeros(1)}, {"task": "cxr-pneumonia", "architecture": "resnet18"})
    with pytest.raises(BundleError, match="model.pt: weights do not fit resnet18"):
        load_cxr_bundle(tmp_path / "x", device="cpu")


def test_saved_weights_load_back_into_the_same_network(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet18")
    meta = {"task": "cxr-pneumonia", "architecture": "resnet18", "name": "n", "version": "2",
            "input": {"img_size": 64}, "threshold": {"value": 0.4}}
    save_bundle(tmp_path, net.state_dict(), meta)
    b = load_cxr_bundle(tmp_path, device="cpu")
    x = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(b.model(x), net.eval()(x))
    assert b.model_id == "n@2" and b.threshold == 0.4 and b.img_size == 64 and b.arch == "resnet18"
    assert b.device == torch.device("cpu") and b.path == tmp_path and not b.model.training
    assert all(p.device.type == "cpu" for p in b.model.parameters())


def test_probability_without_stored_calibration_is_the_plain_sigmoid():
    b = CxrBundle(nn.Identity(), {"threshold": {"value": 0.5}}, torch.device("cpu"), None)
    z = torch.linspace(-4, 4, 9)
    assert torch.allclose(b.probability(z), torch.sigmoid(z))
    b.meta["calibration"] = {"a": 2.0, "b": -1.0}
    assert torch.allclose(b.probability(z), torch.sigmoid(2 * z - 1))


def test_save_bundle_renders_the_card_from_the_metadata_as_written(tmp_path):
    state = nn.Linear(3, 1).state_dict()
    seen = []

    def render(meta):
        seen.append(meta)
        return f"# {model_id(meta)}\nweights {meta['sha256']}\nsplit {meta['split']}\n"

    save_bundle(tmp_path, state, {"name": "m", "version": "2", "split": ("a", "b")}, card=render)
    meta = read_metadata(tmp_path)
    assert seen == [meta]  # the JSON read back: sha256 and torch version included, tuples as lists
    assert (tmp_path / "MODEL_CARD.md").read_text() == f"# m@2\nweights {sha256_file(tmp_path / WEIGHTS)}\nsplit ['a', 'b']\n"
    assert model_id({}) == "?@?" and metadata_or_none(tmp_path / "missing") is None


def test_sha256_mismatch_message_shows_both_digests(tmp_path):
    save_bundle(tmp_path, {"w": torch.zeros(1)}, {})
    meta = json.loads((tmp_path / METADATA).read_text())
    meta["sha256"] = "0123456789abcdef" * 4
    (tmp_path / METADATA).write_text(json.dumps(meta))
    digest = sha256_file(tmp_path / WEIGHTS)
    expected = f"{tmp_path / WEIGHTS}: sha256 {digest[:12]}... does not match metadata (0123456789ab...)"
    with pytest.raises(BundleError) as err:
        read_state(tmp_path)
    assert str(err.value) == expected
