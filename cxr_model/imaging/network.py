"""The pneumonia classifier: a torchvision architecture, one grey input channel, one logit.

The output is the logit of P(pneumonia); ``torch.sigmoid`` of it is the probability. One logit
(not two softmax classes) keeps calibration simple; Grad-CAM targets that logit.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn
from torchvision import models

ARCHITECTURES = ("resnet18", "resnet34", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf")


def build_model(arch: str = "resnet18") -> nn.Module:
    """Build an untrained network for 1-channel input and one output logit.

    Args:
        arch: one of :data:`ARCHITECTURES`.

    Returns:
        ``nn.Module`` mapping ``(N, 1, S, S)`` float32 to ``(N, 1)`` logits.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    net = getattr(models, arch)(weights=None, num_classes=1)
    _to_one_channel(net)
    return net


def _to_one_channel(net: nn.Module) -> None:
    """Replace the first 3-channel convolution by a 1-channel one of the same shape."""
    for parent in net.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                new = nn.Conv2d(
                    1, child.out_channels, child.kernel_size, child.stride, child.padding,
                    child.dilation, child.groups, child.bias is not None,
                )
                setattr(parent, child_name, new)
                return
    raise RuntimeError("no 3-channel input convolution found")


#: CAM target layers offered per architecture family, the default (last block, coarsest map) first.
#: At 224 px a ResNet's layer4 map is 7 x 7, layer3 14 x 14, layer2 28 x 28.
CAM_LAYERS = {"resnet": ("layer4", "layer3", "layer2")}


def cam_layers(arch: str) -> tuple[str, ...]:
    """Names of the CAM target layers offered for ``arch`` (``("last",)`` where only the last block is)."""
    return next((v for k, v in CAM_LAYERS.items() if arch.startswith(k)), ("last",))


def target_layer(net: nn.Module, arch: str, layer: str | None = None) -> nn.Module:
    """The layer a CAM reads: by default the last convolutional block (coarsest spatial map).

    Args:
        layer: one of :func:`cam_layers` (``None``: the first, the last block).
    """
    if layer not in (None, *cam_layers(arch)):
        raise ValueError(f"unknown CAM layer {layer!r} for {arch}; choose one of {', '.join(cam_layers(arch))}")
    if arch.startswith("resnet"):
        return getattr(net, layer or "layer4")[-1]
    if arch.startswith("mobilenet") or arch.startswith("efficientnet"):
        return net.features[-1]
    if arch.startswith("regnet"):
        return net.trunk_output[-1]
    raise ValueError(f"no Grad-CAM layer known for {arch!r}")


def classifier_head(net: nn.Module, arch: str) -> nn.Module:
    """The head whose input is the pooled feature vector (hooked for OOD features)."""
    return net.fc if arch.startswith(("resnet", "regnet")) else net.classifier


def penultimate_features(net: nn.Module, arch: str, x: torch.Tensor) -> torch.Tensor:
    """Pooled features feeding the classifier head, ``(N, D)``; used by the OOD check.

    ``net`` may be a bundle's shared model (``registry.SharedModel``): its lock is then held from
    hooking the head to removing the hook, so no other thread's forward runs through the hook.
    """
    hold = getattr(net, "hold", None)
    with (hold() if hold is not None else nullcontext(net)) as raw:
        feats: list[torch.Tensor] = []
        handle = classifier_head(raw, arch).register_forward_hook(lambda m, inp, out: feats.append(inp[0].detach()))
        try:
            raw(x)
        finally:
            handle.remove()
    return feats[0]


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when present, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
