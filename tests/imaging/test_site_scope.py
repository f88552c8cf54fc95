"""`cxr-model site adapt` leaves out the films the scope check judges outside what the model was made
for (not only unreadable files and declared laterals), names each with its reason, and refuses when
fewer than MIN_FILMS in-scope films remain.

Real films: the 16 official Kermany val films and 20 films of the bundle's own child val part; the
out-of-scope ones are generated here (a black frame, a photograph, printed text, a lateral view from
tests/imaging/laterals.py), written as PNG so that no header declares them out of scope.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cxr_model.cli import main
from cxr_model.imaging.adapt import MIN_FILMS, adapt_batchnorm
from cxr_model.imaging.data import Item, load_sources
from cxr_model.imaging.non_radiographs import non_radiographs
from cxr_model.imaging.ood import load_ood
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.site import read_profile
from cxr_model.imaging.splits import split_items
from cxr_model.imaging.transforms import source_size
from tests.imaging.laterals import lateral_view
from tests.imaging.synthetic import png_bytes


@pytest.fixture(scope="module")
def not_films(tmp_path_factory):
    """Four generated PNGs that are not frontal chest radiographs."""
    folder = tmp_path_factory.mktemp("not_films")
    generated = dict(non_radiographs(seed=0, n_each=1))
    images = {"black.png": np.zeros((300, 260), np.float32), "text.png": generated["text/0"],
              "camera.png": generated["photo/camera"], "lateral.png": lateral_view(np.random.default_rng(7), 320, 300)}
    for name, img in images.items():
        (folder / name).write_bytes(png_bytes(np.clip(img, 0, 1)))
    return sorted(folder.glob("*.png"))


def _flagged(bundle, files) -> dict:
    """What `predict` (the same scope rule, another code path) says of each file: {file: reason} if out of scope."""
    ood = load_ood(bundle)
    out = {}
    for f in files:
        r = predict_source(bundle, f, name=str(f), ood=ood)
        assert r.error is None, r.error
        if r.ood:
            out[f] = r.scope_reason
    return out


def _bn_buffers(bundle):
    with bundle.model.hold() as raw:
        return {f"{k}.{b}": getattr(m, b).detach().cpu() for k, m in raw.named_modules()
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for b in ("running_mean", "running_var")}


def test_adapt_leaves_out_what_the_scope_check_flags_and_names_each_file_and_reason(
        cxr_bundle, kermany_dir, not_films, site_dir, capsys):
    films = sorted((kermany_dir / "val").rglob("*.jpeg")) + [it.path for it in split_items(cxr_bundle, kermany_dir, "val", "child")[:20]]
    files = films + not_films
    flagged = _flagged(cxr_bundle, files)
    assert set(not_films) <= set(flagged)  # the generated non-films are out of scope by the page's own rule
    inside = [f for f in files if f not in flagged]
    assert len(inside) >= MIN_FILMS

    assert main(["site", "adapt", "ward-5", *map(str, files)]) == 0
    cap = capsys.readouterr()
    for f, reason in flagged.items():
        line = next(ln for ln in cap.err.splitlines() if ln.startswith(f"skipped {f}:"))
        assert "outside what the model was made for" in line and reason in line
    assert not any(f"skipped {f}:" in cap.err for f in inside)
    assert f"on {len(inside)} films ({len(flagged)} left out" in cap.out
    info = read_profile(site_dir, "ward-5")
    assert (info["n_films"], info["n_out_of_scope_left_out"], info["n_files"]) == (len(inside), len(flagged), len(files))
    # the saved statistics are those of the in-scope films alone (one batch: order does not matter)
    src, errors = load_sources([Item(f, 0) for f in inside], size=source_size(cxr_bundle.img_size))
    assert not errors
    expected = _bn_buffers(adapt_batchnorm(cxr_bundle, src))
    saved = torch.load(site_dir / "ward-5.pt", weights_only=True)
    assert set(saved) == set(expected)
    assert all(torch.allclose(saved[k], expected[k], rtol=1e-4, atol=1e-5) for k in expected)


def test_adapt_refuses_when_too_few_in_scope_films_remain_and_saves_nothing(
        cxr_bundle, kermany_dir, not_films, site_dir, capsys):
    films = sorted((kermany_dir / "val").rglob("*.jpeg"))[:MIN_FILMS - len(not_films) + 2]
    files = films + not_films  # MIN_FILMS + 2 readable files: enough before the scope check, too few after it
    flagged = _flagged(cxr_bundle, files)
    n_inside = len(files) - len(flagged)
    assert len(files) >= MIN_FILMS > n_inside

    assert main(["site", "adapt", "ward-6", *map(str, files)]) == 2
    err = capsys.readouterr().err
    assert f"at least {MIN_FILMS} readable, in-scope frontal films; {n_inside} of {len(files)} files" in err
    assert all(f"skipped {f}:" in err for f in flagged)
    assert read_profile(site_dir, "ward-6") is None and not (site_dir / "ward-6.pt").exists()
