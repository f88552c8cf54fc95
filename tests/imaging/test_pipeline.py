"""One preprocessing path: training, the CLI, batch evaluation and the UI see the same tensor."""
from __future__ import annotations

import csv

import numpy as np
import torch

from cxr_model.imaging import data as D
from cxr_model.imaging.datasets import FileDataset, SourceDataset
from cxr_model.imaging.evaluate import run_evaluation
from cxr_model.imaging.io import read_image
from cxr_model.imaging.operating import features_and_logits
from cxr_model.imaging.predict import predict_batch, predict_logits, predict_source
from cxr_model.imaging.shift import SHIFTS
from cxr_model.imaging.transforms import EvalTransform, TrainTransform, load_tensor, to_source
from tests.imaging.synthetic import dicom_bytes, phantom, png_bytes


def test_full_size_radiograph_is_squashed_to_224_like_the_training_copies():
    big = np.clip(phantom(1800, 2400) + 0.0, 0, 1)  # wider than tall, like the Kermany originals
    src = to_source(big)
    assert src.shape == (1, 224, 224) and src.dtype == torch.uint8
    # aspect not kept: the two lung fields stay side by side across the full width
    row = src[0, 100].float()
    assert row[60] < row[112] and row[165] < row[112]


def test_training_cli_ui_and_evaluation_agree_on_real_files(kermany_dir, cxr_bundle, tmp_path):
    items = D.kermany_items(kermany_dir, "val")[:6]
    size = cxr_bundle.img_size
    # training: cached uint8 sources + the deterministic transform used for validation
    sources, errors = D.load_sources(items)
    assert not errors
    train_view = SourceDataset(sources, torch.zeros(len(items)), EvalTransform(size))
    # evaluation: the DataLoader dataset
    eval_view = FileDataset(items, size)
    for i, it in enumerate(items):
        ref = load_tensor(it.path, size)
        assert ref.shape == (1, size, size) and ref.dtype == torch.float32
        assert torch.equal(train_view[i][0], ref)
        assert torch.equal(eval_view[i][0], ref)
        # UI: the bytes of an upload
        assert torch.equal(load_tensor(it.path.read_bytes(), size, it.path.name), ref)
    # the probabilities agree between predict (CLI/UI), training's validation pass and evaluate
    logits = predict_logits(cxr_bundle.model, sources, size, cxr_bundle.device)
    with torch.inference_mode():  # the operating-point fit's pass: features and logits of one forward
        feats, logits_f = features_and_logits(cxr_bundle.model, cxr_bundle.arch, EvalTransform(size)(sources))
    np.testing.assert_allclose(logits_f.numpy(), logits, atol=1e-5)
    p_train = cxr_bundle.probability(torch.tensor(logits), features=feats.numpy()).numpy()
    p_cli = np.array([predict_source(cxr_bundle, it.path).probability for it in items])
    run_evaluation(items, cxr_bundle, tmp_path, batch_size=4, workers=0, show_bar=False)
    with open(tmp_path / "predictions.csv") as fh:
        p_eval = np.array([float(r["probability"]) for r in csv.DictReader(fh)])
    np.testing.assert_allclose(p_cli, p_train, atol=1e-5)
    np.testing.assert_allclose(p_eval, p_cli, atol=1e-5)


def test_equalisation_removes_monotone_exposure_changes():
    x = to_source(phantom())
    tf = EvalTransform(160)
    base = tf(x)
    for name in ("darker (exposure -30 %)", "gamma 0.6", "gamma 1.6"):
        shifted = tf(SHIFTS[name](x))
        # equalisation maps any monotone intensity change back close to the same image
        assert (shifted - base).abs().mean() < 0.25, name
    assert abs(float(base.mean())) < 0.5  # centred by the normalisation


def test_dicom_and_png_of_the_same_real_film_give_the_same_tensor(kermany_dir):
    film = read_image(next((kermany_dir / "train" / "PNEUMONIA").glob("*.jpeg")))
    t_png = load_tensor(png_bytes(film), 128, "film.png")
    # the same film stored as 12-bit DICOM values (x16) with an offset, as a detector would
    t_dcm = load_tensor(dicom_bytes(np.rint(film * 255).astype(np.uint16) * 16 + 100), 128, "film.dcm")
    d = (t_png - t_dcm).abs()
    assert float(d.mean()) < 0.02 and float(d.max()) < 0.1


def test_train_transform_is_random_but_shaped_like_eval():
    x = to_source(phantom())
    tt = TrainTransform(96)
    a, b = tt(x), tt(x)
    assert a.shape == (1, 96, 96) and a.dtype == torch.float32
    assert not torch.equal(a, b)


def test_batch_prediction_equals_one_file_at_a_time(cxr_bundle, kermany_dir):
    items = D.kermany_items(kermany_dir, "val")[:4]
    x = torch.stack([load_tensor(it.path, cxr_bundle.img_size) for it in items])
    p = predict_batch(cxr_bundle, x)
    assert p.shape == (4,) and p.dtype == np.float64
    assert np.allclose(p, [predict_source(cxr_bundle, it.path).probability for it in items], atol=1e-5)
