"""Site adaptation without labels: batch-norm statistics re-estimated on one site's own films.

Opt-in (the bundled model is used as is by default). A site that sends its films through a
different detector, processing or export sees the network's intermediate activations shift;
re-estimating every BatchNorm layer's running mean and variance on N unlabelled local studies
(Li et al., "Revisiting batch normalization for practical domain adaptation", 2016: AdaBN)
moves them back, without touching a learned weight. The result is a *site profile*: only the BN
buffers (tensors, loaded with ``weights_only=True``), tied to the bundle's weights by sha256.

Calibration, threshold, population model and OOD statistics stay the bundle's; the population
model and the OOD check keep reading the bundled network's features (``CxrBundle.reference``), on
which they were fitted (adapted features sit farther from the OOD Gaussian: on the 16 official
val films, 3 were flagged after adaptation against 1 before).
"""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.transforms import EvalTransform
from cxr_model.registry import BundleError

MIN_FILMS = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _bn_layers(net: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {k: m for k, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


@torch.no_grad()
def adapt_batchnorm(bundle: CxrBundle, sources: torch.Tensor, batch_size: int = 64, name: str = "site",
                    img_size: int | None = None) -> CxrBundle:
    """A new bundle whose BN statistics are those of ``sources`` (the shared one is not touched).

    The statistics are averaged over batches; deeper layers see activations normalised by each
    batch's own statistics, so their estimates depend a little on how the films are batched
    (not on their order within one batch): use batches as large as memory allows.

    Args:
        sources: uint8 ``(N, 1, 224, 224)`` films of one site (the one preprocessing path's
            source form), ``N >= MIN_FILMS``.
        img_size: the input size the statistics are estimated at (default: the bundle's own).

    Returns:
        A :class:`CxrBundle` with a deep copy of the network; ``meta["site_profile"]`` names it.
    """
    if len(sources) < MIN_FILMS:
        raise ValueError(f"site adaptation needs at least {MIN_FILMS} films (got {len(sources)})")
    with bundle.model.hold() as raw:
        net = copy.deepcopy(raw)
    for m in _bn_layers(net).values():
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches: the order of the films does not matter
    net.train()
    tf = EvalTransform(img_size or bundle.img_size)
    for i in range(0, len(sources), batch_size):
        net(tf(sources[i:i + batch_size]).to(bundle.device))
    net.eval()
    meta = dict(bundle.meta, site_profile={"name": name, "n_films": int(len(sources)),
                                           "method": "BatchNorm running statistics re-estimated (AdaBN)"})
    return CxrBundle(net, meta, bundle.device, bundle.path, reference=bundle.reference or bundle.model)


def save_site_profile(adapted: CxrBundle, folder: str | Path, name: str) -> Path:
    """Write ``<folder>/<name>.pt`` (BN buffers) and ``<name>.json`` (what, for which weights)."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r}: a site name is letters, digits, '.', '_' or '-' (at most 64)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with adapted.model.hold() as raw:
        buffers = {f"{k}.{b}": getattr(m, b).detach().cpu().clone()
                   for k, m in _bn_layers(raw).items() for b in ("running_mean", "running_var")}
    torch.save(buffers, folder / f"{name}.pt")
    info = dict(adapted.meta.get("site_profile", {}), name=name, model=adapted.model_id,
                model_sha256=adapted.meta.get("sha256"), created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    (folder / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return folder / f"{name}.pt"


def load_site_profile(bundle: CxrBundle, folder: str | Path, name: str) -> CxrBundle:
    """The bundle with a saved site profile applied (a copy); :class:`BundleError` if it does not fit."""
    if not _NAME.match(name):
        raise BundleError(f"{name!r}: not a site profile name")
    pt, js = Path(folder) / f"{name}.pt", Path(folder) / f"{name}.json"
    if not pt.exists() or not js.exists():
        raise BundleError(f"{pt}: no such site profile")
    info = json.loads(js.read_text())
    if info.get("model_sha256") != bundle.meta.get("sha256"):
        raise BundleError(f"{js}: site profile was made for other weights ({info.get('model')}); adapt again")
    buffers = torch.load(pt, map_location="cpu", weights_only=True)
    with bundle.model.hold() as raw:
        net = copy.deepcopy(raw)
    layers = _bn_layers(net)
    expected = {f"{k}.{b}" for k in layers for b in ("running_mean", "running_var")}
    if set(buffers) != expected:
        raise BundleError(f"{pt}: site profile does not match the network's BatchNorm layers")
    for key, value in buffers.items():
        layer, buf = key.rsplit(".", 1)
        getattr(layers[layer], buf).copy_(value)
    net.eval()
    return CxrBundle(net, dict(bundle.meta, site_profile=info), bundle.device, bundle.path,
                     reference=bundle.reference or bundle.model)
