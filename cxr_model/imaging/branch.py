"""The adults' high-resolution branch: the bundle's own backbone read at 448 px, a per-location head.

Why: the adult NIH films are 512 px, and an adult's opacity is a small part of a large chest; the
224 px path squashes it away (measured in ``benchmarks/adult_resolution.py`` and
``benchmarks/adult_branch.py``). Children keep the 224 px path they were trained and validated on.

How a film is scored on the branch (only films the operating point treats as adult: DICOM
PatientAge of 18 years or more, else the image's population estimate):

1. the film is read again through the one preprocessing path at ``img_size`` (448) px
   (``transforms.model_input``), and the shared backbone (the same weights, the same lock) gives its
   ``layer4`` map, 14 x 14 cells at 448 px;
2. each cell's 512 features are standardised (per channel, training films' statistics) and a
   linear head gives each cell a logit;
3. where the head has a spatial ``prior`` (``(S, S)``, mean 1: how often the radiologists' opacity
   boxes of the training films cover each cell, smoothed, with a floor), each cell's logit is
   weighted by it, so evidence counts where pneumonia is drawn (the lung fields) more than at the
   film's edges; without one, every cell counts alike;
4. the film's logit is the **mean of the cells' contributions** (logit x prior). So the class
   activation map (Zhou et al., CVPR 2016) of the film's logit *is* the contribution map: HiResCAM
   on ``layer4`` of this network gives exactly it (gradient x activation, cell by cell, up to a
   constant), while Grad-CAM, which averages the gradient over the cells, gives the cell logits
   without the prior.

The head was trained on the adult training films' labels and, on the boxed ones, with a loss that
puts the cell logits of a pneumonia film inside its radiologists' opacity boxes (``branch_fit``).

Files: ``adult_branch.pt`` (tensors only, ``weights_only=True``) beside the weights, bound to them
and checked by sha256 in ``metadata.json["adult_branch"]``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cxr_model.registry import BundleError, sha256_file

BRANCH_WEIGHTS = "adult_branch.pt"
BRANCH_POPULATION = "adult"


class BranchHead(nn.Module):
    """Per-cell standardisation and linear head over a ``(N, C, S, S)`` feature map.

    With a ``prior`` (``(S, S)``, mean 1), each cell's logit is weighted by it: the head's output is
    the cell's *contribution* to the film's logit (their mean), and that is the map the reviewer sees.
    Without one (an empty buffer) every cell counts alike.
    """

    def __init__(self, channels: int = 512, prior: torch.Tensor | None = None):
        super().__init__()
        self.linear = nn.Linear(channels, 1)
        self.register_buffer("mu", torch.zeros(channels))
        self.register_buffer("sd", torch.ones(channels))
        self.register_buffer("prior", torch.zeros(0) if prior is None else torch.as_tensor(prior, dtype=torch.float32))

    def cell_logits(self, fmap: torch.Tensor) -> torch.Tensor:
        """Each cell's own logit ``(N, S, S)``, before the prior."""
        z = (fmap - self.mu[:, None, None]) / self.sd[:, None, None]
        return self.linear(z.permute(0, 2, 3, 1))[..., 0]

    def weigh(self, cells: torch.Tensor) -> torch.Tensor:
        """Cell logits ``(N, S, S)`` -> their contributions: times the prior, where the head has one."""
        return cells * self.prior if self.prior.numel() else cells

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """Each cell's contribution ``(N, S, S)``: its logit times the prior; their mean is the film's logit."""
        return self.weigh(self.cell_logits(fmap))


class BranchNet(nn.Module):
    """A ResNet backbone (shared, not copied) read to ``layer4``, then :class:`BranchHead`, mean-pooled.

    ``layer1`` ... ``layer4`` are the backbone's (so the CAM layers of ``network.target_layer``
    resolve), and ``fc`` sees the pooled ``layer4`` features, as a ResNet's head does (so the
    feature hooks of ``explain`` and ``features_and_logits`` work unchanged).
    """

    def __init__(self, base: nn.Module, head: BranchHead):
        super().__init__()
        self.base = base
        self.head = head
        self.fc = nn.Identity()

    layer1 = property(lambda self: self.base.layer1)
    layer2 = property(lambda self: self.base.layer2)
    layer3 = property(lambda self: self.base.layer3)
    layer4 = property(lambda self: self.base.layer4)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        b = self.base
        h = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(h))))

    def cell_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, S, S)`` cell contributions (cell logits times the prior, if any); their mean is the film's logit."""
        return self.head(self.feature_map(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.feature_map(x)
        self.fc(fmap.mean((2, 3)))  # the pooled features, for hooks on ``fc`` (the OOD/feature readers)
        return self.head(fmap).flatten(1).mean(1, keepdim=True)


def load_head(bundle_dir: str | Path, spec: dict) -> BranchHead:
    """The branch head of a bundle, verified against ``spec["sha256"]`` and loaded as tensors only."""
    path = Path(bundle_dir) / spec.get("file", BRANCH_WEIGHTS)
    if not path.exists():
        raise BundleError(f"{path}: the adult branch's weights are missing")
    digest = sha256_file(path)
    if digest != spec.get("sha256"):
        raise BundleError(f"{path}: sha256 {digest[:12]}... does not match metadata ({str(spec.get('sha256'))[:12]}...)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state.setdefault("prior", torch.zeros(0))  # heads written before the prior existed: every cell alike
    head = BranchHead(int(state["linear.weight"].shape[1]), state["prior"])
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(f"{path}: not an adult branch head ({exc})") from None
    return head.eval()


def branch_meta(meta: dict) -> dict:
    """Metadata of the branch's view of a bundle: its input size and its own operating point; no
    population model (the branch scores only films already judged adult)."""
    spec = meta["adult_branch"]
    out = {k: v for k, v in meta.items() if k not in ("population_model", "adult_branch")}
    out["input"] = dict(meta["input"], img_size=int(spec["img_size"]), source_size=int(spec["img_size"]))
    out["operating_point"] = spec["operating_point"]
    out["branch"] = BRANCH_POPULATION
    out["branch_prior"] = bool(spec.get("training", {}).get("prior"))  # the head weights cells by a spatial prior
    return out
