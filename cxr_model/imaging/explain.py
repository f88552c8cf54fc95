"""Grad-CAM maps for the pneumonia logit, their faithfulness, and the pointing game.

All CAM methods come from the ``grad-cam`` package (jacobgil/pytorch-grad-cam). The bundled model
is shared by every caller (the Streamlit app caches one copy per process), so this module never
changes it: no ``requires_grad`` edits, no ``train()``. Two things the package does touch are put
back while the bundle's lock is held (``bundle.model.hold()``, see ``registry.SharedModel``):

* forward hooks on the target layer: registered and released by ``with Method(...) as cam:``;
* parameter ``.grad`` buffers filled by its ``loss.backward()``: reset to ``None`` afterwards.

The lock also keeps two concurrent sessions from seeing each other's activations through the
hooks, which live on the one shared module: every forward of the model takes the same lock.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.network import cam_layers, classifier_head, target_layer

#: CAM methods offered, by display name. ScoreCAM runs one forward per channel of the target
#: layer (512 for ResNet-18): ~10-30 s on CPU, so it is run with a small batch to bound memory.
METHODS = {
    "GradCAM": GradCAM,
    "GradCAM++": GradCAMPlusPlus,
    "HiResCAM": HiResCAM,
    "XGradCAM": XGradCAM,
    "EigenCAM": EigenCAM,
    "LayerCAM": LayerCAM,
    "ScoreCAM": ScoreCAM,
}
SLOW_METHODS = {"ScoreCAM"}
#: Methods whose map ignores the target: EigenCAM is the first principal component of the layer's
#: activations, and pytorch-grad-cam's ``get_2d_projection`` leaves the SVD's sign arbitrary, so its map
#: says neither "pneumonia" nor "raises P". Offered to look at, never a bundle's default map.
CLASS_AGNOSTIC = {"EigenCAM"}
SCORECAM_BATCH = 16
#: The model's single output is the pneumonia logit: ``output[0]`` of each sample.
PNEUMONIA = ClassifierOutputTarget(0)
EXPLAIN_META = "explain.json"  # the bundle's measured default CAM (see default_cam)
ROAD_PERCENTILES = (20, 50, 80)  # 6 imputations (sparse solves): ~1-3 s on CPU at 160 px


@dataclass
class Explanation:
    """A CAM and what the same forward pass gave.

    Attributes:
        cam: ``float32 (S, S)`` in [0, 1], the input tensor's spatial shape.
        logit: the pneumonia logit of that forward pass.
        probability: calibrated P(pneumonia) (``bundle.probability(logit)``).
        features: penultimate features ``float32 (D,)`` (for the OOD score).
        method: the CAM method's name.
    """

    cam: np.ndarray
    logit: float
    probability: float
    features: np.ndarray
    method: str


def _batch(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4 or tensor.shape[0] != 1 or tensor.shape[1] != 1:
        raise ValueError(f"expected a (1, S, S) or (1, 1, S, S) tensor, got {tuple(tensor.shape)}")
    return tensor


class _FrozenView(torch.nn.Module):
    """The shared network run with detached weights (``torch.func.functional_call``).

    The backward pass then computes gradients for the activations only, not for the 11 M weights:
    about a third less work, and nothing is written to the shared model's ``.grad``. The same
    module objects run, so the CAM's hooks on the target layer still fire.
    """

    def __init__(self, net: torch.nn.Module, on_forward: Callable[[], None] | None = None):
        super().__init__()
        self.net = net
        self.on_forward = on_forward
        self.state = {**{n: p.detach() for n, p in net.named_parameters()}, **dict(net.named_buffers())}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.on_forward is not None:  # progress / cancellation of a slow method (it may raise)
            self.on_forward()
        return torch.func.functional_call(self.net, self.state, (x,))


def explain(bundle: CxrBundle, tensor: torch.Tensor, method: str = "GradCAM", layer: str | None = None,
            on_forward: Callable[[], None] | None = None, population: str | None = None) -> Explanation:
    """One forward (+ one backward for gradient methods): CAM, probability and features together.

    Args:
        bundle: the loaded classifier (not modified).
        tensor: model input ``(1, S, S)`` or ``(1, 1, S, S)`` float32 (from the one preprocessing
            path, :func:`cxr_model.imaging.transforms.load_tensor`); not modified.
        method: a key of :data:`METHODS`.
        layer: target layer, one of ``network.cam_layers(bundle.arch)`` (``None``: the last block;
            :func:`default_cam` gives the bundle's measured default).
        on_forward: called before each forward pass of the network (:func:`forward_passes` of
            them); an exception it raises stops the method, and the hooks and lock are released.
        population: ``"child"``/``"adult"`` declared (e.g. DICOM PatientAge) for the operating point;
            ``None``: estimated from the image.

    Returns:
        :class:`Explanation` whose ``cam`` has shape ``(S, S)``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    # A copy that requires grad: with detached weights, the graph hangs off the input.
    x = _batch(tensor).to(bundle.device).detach().clone().requires_grad_(True)
    feats: list[torch.Tensor] = []
    with bundle.model.hold() as net:
        layer_module = target_layer(net, bundle.arch, layer)
        handle = classifier_head(net, bundle.arch).register_forward_hook(lambda m, i, o: feats.append(i[0].detach()))
        try:
            with METHODS[method](model=_FrozenView(net, on_forward), target_layers=[layer_module]) as cam:
                if method in SLOW_METHODS:
                    cam.batch_size = SCORECAM_BATCH
                grayscale = cam(input_tensor=x, targets=[PNEUMONIA])
                logit = cam.outputs.detach()[0, 0].float()
                cam.outputs = None  # drop the retained graph now, not at garbage collection
        finally:
            handle.remove()
            net.zero_grad(set_to_none=True)
    f = bundle.scope_features(x, feats[0].cpu().numpy())  # a site copy: the bundled network's features
    prob = float(bundle.probability(logit.reshape(1), features=f, population=population))
    return Explanation(np.asarray(grayscale[0], dtype=np.float32), float(logit), prob, f[0].astype(np.float32), method)


def default_cam(bundle: CxrBundle) -> tuple[str, str | None]:
    """The bundle's default CAM ``(method, layer)``: the pair that localised best on its validation
    patients (``explain.json`` beside the weights, written by ``cxr-model pointing --write`` for
    these exact weights; for a bundle's adult branch, its ``branch_default``), else ``("GradCAM", None)``
    (the last block)."""
    path = bundle.path / EXPLAIN_META
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return "GradCAM", None
    if d.get("model_sha256") != bundle.meta.get("sha256"):
        return "GradCAM", None  # measured for other weights: not this model's default
    if bundle.meta.get("branch"):  # the adult branch's own pair, measured on it (``branch_default``)
        d = d.get("branch_default") or {}
    if d.get("method") not in METHODS:
        return "GradCAM", None
    layer = d.get("layer")
    return d["method"], layer if layer in cam_layers(bundle.arch) else None


def cam_choice(bundle: CxrBundle, method: str | None = None, layer: str | None = None) -> tuple[str, str | None]:
    """The ``(method, layer)`` to compute: the bundle's default pair (:func:`default_cam`) where the
    caller names neither, the default's layer for the default method, else as named (``None``: the
    last block)."""
    d_method, d_layer = default_cam(bundle)
    return method or d_method, layer or (d_layer if method in (None, d_method) else None)


def forward_passes(bundle: CxrBundle, method: str, layer: str | None = None) -> int:
    """Forward passes :func:`explain` makes: 1, or for ScoreCAM 1 + one per batch of feature maps."""
    if method not in SLOW_METHODS:
        return 1
    convs = [m for m in target_layer(bundle.model, bundle.arch, layer).modules() if isinstance(m, torch.nn.Conv2d)]
    channels = convs[-1].out_channels if convs else 512
    return 1 + math.ceil(channels / SCORECAM_BATCH)


def compute_cam(bundle: CxrBundle, tensor: torch.Tensor, method: str = "GradCAM") -> np.ndarray:
    """Class activation map for the pneumonia logit.

    Args:
        bundle: the loaded classifier (not modified).
        tensor: ``(1, S, S)`` or ``(1, 1, S, S)`` float32 model input; not modified.
        method: one of :data:`METHODS` (``"ScoreCAM"`` is slow on CPU, ~10-30 s).

    Returns:
        ``float32 (S, S)`` in [0, 1]; 1 marks the regions that raise P(pneumonia) most.
    """
    return explain(bundle, tensor, method).cam


def overlay(gray_image: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a CAM (jet colour map) over a grey radiograph.

    Args:
        gray_image: ``(H, W)`` float in [0, 1] (the pixel contract, or a windowed view of it), or
            ``uint8`` (a review study's display copy).
        cam: ``(h, w)`` float in [0, 1]; resized (bilinear) to ``(H, W)``.
        alpha: CAM opacity in [0, 1]; 0 shows the radiograph alone.

    Returns:
        ``uint8 (H, W, 3)`` RGB.
    """
    alpha = float(np.clip(alpha, 0.0, 1.0))
    h, w = gray_image.shape[:2]
    cam_r = cv2.resize(np.asarray(cam, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * np.clip(cam_r, 0, 1)), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    # uint8 blend in OpenCV: ~5x faster than float arrays on a 1024 x 1024 radiograph.
    gray8 = gray_image if gray_image.dtype == np.uint8 else np.uint8(np.rint(255 * np.clip(gray_image, 0, 1)))
    base = cv2.cvtColor(gray8, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)


# ------------------------------------------------------------------------------------ faithfulness
@dataclass
class Faithfulness:
    """ROAD score of a CAM and its plain meaning.

    Attributes:
        score: ROADCombined, mean over percentiles of (P(pneumonia) after removing the *least*
            relevant pixels) minus (P after removing the *most* relevant), halved; probability
            units in [-0.5, 0.5]; above 0: the map points at pixels the model uses. NaN for a
            flat map.
        meaning: one sentence for the reader.
    """

    score: float
    meaning: str


class _Probability:
    """Target callable: calibrated P(pneumonia) of one sample's output, so ROAD reads in probability."""

    def __init__(self, bundle: CxrBundle):
        self.bundle = bundle

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return self.bundle.probability(output[0])


def faithfulness(bundle: CxrBundle, tensor: torch.Tensor, cam: np.ndarray) -> Faithfulness:
    """ROAD (Rong et al., ICML 2022) faithfulness of ``cam`` for this input, via ``grad-cam``.

    Pixels are removed in CAM order (at each of :data:`ROAD_PERCENTILES`) and filled by noisy
    linear imputation, so the removal itself does not leak the mask's shape to the model.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if not np.isfinite(cam).all() or float(cam.max() - cam.min()) <= 1e-6:
        # A flat map ranks no pixel above another; ROAD would impute the whole image.
        return Faithfulness(float("nan"), "The map is flat (it highlights nothing), so its faithfulness cannot be "
                                          "measured.")
    x = _batch(tensor).to(bundle.device)
    metric = ROADCombined(percentiles=list(ROAD_PERCENTILES))
    # Under the bundle's lock: a forward here while another thread's CAM hooks are on the shared
    # model would feed this image's activations into that CAM.
    # The imputer adds torch.randn noise: a fixed seed (in a forked RNG, so the caller's stream is
    # untouched) makes the figure reproducible for the same image and map.
    with bundle.model.hold() as net, torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        score = float(metric(x, np.asarray(cam, dtype=np.float32)[None], [_Probability(bundle)], net)[0])
    # ROADCombined = (LeRF - MoRF) / 2: half the gap between the two removal orders.
    if score > 0.02:
        meaning = (f"ROAD {score:+.3f}: removing the pixels the map highlights lowers P(pneumonia) more than "
                   f"removing as many pixels it ignores (by {2 * score:.2f} on average; ROAD is half that gap): the "
                   "map points at what the model uses.")
    elif score < -0.02:
        meaning = (f"ROAD {score:+.3f}: removing the pixels the map highlights lowers P(pneumonia) less than "
                   f"removing pixels it ignores (by {2 * abs(score):.2f} on average; ROAD is half that gap): this map "
                   "does not show what the model uses; do not rely on it.")
    else:
        meaning = (f"ROAD {score:+.3f}: removing highlighted or ignored pixels changes P(pneumonia) about "
                   "equally: the map says little about where the model looked.")
    return Faithfulness(score, meaning)


