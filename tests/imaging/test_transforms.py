"""The eval path's numbers, exactly: 8-bit rounding of the pixel contract, the Lanczos squash to
224 x 224 (as the Kermany copies were made), equalisation and the (x - 0.5) / 0.29 scaling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cxr_model.imaging.transforms import NORM_MEAN, NORM_STD, EvalTransform, to_source


def test_to_source_rounds_the_contract_to_8_bits():
    gray = np.tile(np.array([0.0, 0.001, 0.5, 0.999, 1.0], np.float32), (224, 1))[:, np.arange(224) % 5]
    src = to_source(gray)
    assert src.shape == (1, 224, 224) and src.dtype == torch.uint8
    assert sorted(set(src[0, 0].tolist())) == [0, 128, 255]  # 0.001 -> 0, 0.5 -> 127.5 -> 128, 0.999 -> 255


def test_to_source_squashes_other_sizes_with_lanczos_like_the_training_copies():
    rng = np.random.default_rng(0)
    gray = rng.random((300, 200)).astype(np.float32)
    img8 = np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)
    expected = np.asarray(Image.fromarray(img8, mode="L").resize((224, 224), Image.LANCZOS))
    assert np.array_equal(to_source(gray)[0].numpy(), expected)
    assert not np.array_equal(expected, np.asarray(Image.fromarray(img8, mode="L").resize((224, 224))))


def test_eval_transform_equalises_and_scales_to_the_documented_range():
    src = torch.zeros(1, 224, 224, dtype=torch.uint8)
    src[:, :, 112:] = 200  # two grey levels: equalisation sends them to 0 and 255 (the top bin)
    x = EvalTransform(224)(src)
    assert x.dtype == torch.float32 and x.shape == (1, 224, 224)
    low, high = (0 - NORM_MEAN) / NORM_STD, (1 - NORM_MEAN) / NORM_STD
    assert sorted(torch.unique(x).tolist()) == pytest.approx([low, high], abs=1e-6)
    assert torch.equal(EvalTransform(160)(src.unsqueeze(0))[0], EvalTransform(160)(src))  # batch = single


def test_load_tensor_names_the_file_in_its_error():
    from cxr_model.imaging.io import ImageReadError
    from cxr_model.imaging.transforms import load_tensor

    with pytest.raises(ImageReadError, match=r"^chest_07\.png: "):
        load_tensor(b"\x89PNG\r\n\x1a\n not a png", 64, "chest_07.png")


def test_a_larger_model_reads_a_larger_source_resized_once_from_the_original():
    from cxr_model.imaging.transforms import model_input, source_size

    assert source_size(160) == 224 and source_size(224) == 224 and source_size(448) == 448
    rng = np.random.default_rng(1)
    gray = rng.random((512, 480)).astype(np.float32)
    img8 = np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)
    direct = np.asarray(Image.fromarray(img8, mode="L").resize((448, 448), Image.LANCZOS))
    assert np.array_equal(to_source(gray, 448)[0].numpy(), direct)
    # 448: from the original, not upsampled from the 224 copy (that would lose the detail)
    x448 = model_input(gray, 448)
    assert x448.shape == (1, 448, 448)
    assert torch.equal(x448, EvalTransform(448)(torch.from_numpy(direct).unsqueeze(0)))
    assert not torch.equal(x448, EvalTransform(448)(to_source(gray)))
    # 224 and smaller models: exactly the path they were trained on
    assert torch.equal(model_input(gray, 224), EvalTransform(224)(to_source(gray)))
    assert torch.equal(model_input(gray, 160), EvalTransform(160)(to_source(gray)))
