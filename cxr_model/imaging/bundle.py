"""The chest X-ray bundle: CxrBundle and its loader (sha256-checked, weights_only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cxr_model.imaging import operating as OP
from cxr_model.imaging.branch import BRANCH_POPULATION, BranchNet, branch_meta, load_head
from cxr_model.imaging.network import build_model, penultimate_features, pick_device
from cxr_model.metrics.calibration import apply_platt
from cxr_model.registry import WEIGHTS, BundleError, SharedModel, model_id, read_state
from cxr_model.settings import get_settings


@dataclass
class CxrBundle:
    """A loaded chest X-ray classifier. Shared by callers: never mutate ``model``.

    Attributes:
        model: the network in eval mode on ``device``, wrapped in :class:`SharedModel` so that
            every forward holds the bundle's lock (a bare ``nn.Module`` passed in is wrapped).
        meta: the bundle's metadata (threshold, img_size, calibration, ...).
        reference: for a site copy whose BN statistics were adapted (:mod:`~cxr_model.imaging.adapt`),
            the bundled network: the population model and the OOD statistics were fitted on *its*
            features, so they are judged on them (:meth:`scope_features`); ``None`` as bundled.
        branch: where the metadata has ``adult_branch``, the adults' 448 px view of the same network
            (:mod:`~cxr_model.imaging.branch`), a bundle of its own input size and operating point
            that :meth:`scorer` hands out for adult films; ``None`` otherwise.
    """

    model: SharedModel
    meta: dict[str, Any]
    device: torch.device
    path: Path
    reference: SharedModel | None = None
    branch: CxrBundle | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, SharedModel):
            self.model = SharedModel(self.model)
        spec = self.meta.get("adult_branch")
        if spec and self.branch is None:  # the adults' 448 px view of the same network (see ``branch``)
            head = load_head(self.path, spec).to(self.device)
            with self.model.hold() as raw:
                net = BranchNet(raw, head).eval()
            self.branch = CxrBundle(self.model.sibling(net), branch_meta(self.meta), self.device, self.path)

    def scorer(self, population: str | None) -> CxrBundle:
        """The view of this bundle that scores a film of ``population``: the adult branch for an
        adult where the bundle has one, else the bundle itself."""
        return self.branch if population == BRANCH_POPULATION and self.branch is not None else self

    @property
    def model_id(self) -> str:
        return model_id(self.meta)

    @property
    def img_size(self) -> int:
        return int(self.meta["input"]["img_size"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"]["value"])

    @property
    def arch(self) -> str:
        return self.meta["architecture"]

    @property
    def operating_point(self) -> dict | None:
        """The population-aware operating point (see :mod:`~cxr_model.imaging.operating`), if any."""
        return self.meta.get("operating_point")

    def populations(self, features=None, declared=None, n: int | None = None) -> list[str | None]:
        """Population per film: ``declared`` (e.g. from DICOM PatientAge) where given, else from
        the penultimate ``features`` ``(N, D)``; ``None`` = uncertain (the pooled map applies)."""
        model = self.meta.get("population_model")
        if features is None or model is None:
            n = n if n is not None else (len(declared) if declared is not None else 0)
            return [d if d in OP.POPULATIONS else None for d in (declared or [None] * n)]
        return OP.assign(OP.PopulationModel.from_meta(model).p_adult(features), declared)

    def scope_features(self, x: torch.Tensor, features):
        """Penultimate features for the population model and the OOD check of model inputs ``x``:
        ``features`` (this network's own, numpy or torch ``(N, D)``) unless this is an adapted site
        copy, whose bundled network then gives them (one more forward pass)."""
        if self.reference is None:
            return features
        with torch.inference_mode():
            f = penultimate_features(self.reference, self.arch, x.detach().to(self.device)).float()
        return f.cpu().numpy() if not isinstance(features, torch.Tensor) else f.clone()

    @property
    def site_profile(self) -> str | None:
        """Name of the site profile applied to this copy (:mod:`~cxr_model.imaging.site`), ``None`` as bundled."""
        return (self.meta.get("site_profile") or {}).get("name")

    @property
    def site_profile_sha256(self) -> str | None:
        """SHA-256 of the applied site profile's files (:func:`~cxr_model.imaging.site.profile_sha256`), ``None`` as bundled."""
        return (self.meta.get("site_profile") or {}).get("profile_sha256")

    def population_report(self, features, declared: list[str | None]) -> list[tuple[str | None, str | None]]:
        """Per film ``(population, source)`` the operating point used: source ``"dicom_age"`` (declared),
        ``"image_estimate"`` or ``"pooled"`` (estimate uncertain: pooled map); ``(None, None)`` for a
        bundle without a population-aware operating point."""
        if self.operating_point is None:
            return [(None, None)] * len(declared)
        pops = self.populations(features, list(declared), len(declared))
        return [(p, "dicom_age" if d in OP.POPULATIONS else "image_estimate" if p else "pooled")
                for p, d in zip(pops, declared)]

    def probability(self, logits: torch.Tensor, features=None, population=None) -> torch.Tensor:
        """Calibrated P(pneumonia) from raw logits (Platt scaling fitted on validation).

        With an operating point in the metadata, ``features`` (penultimate, ``(N, D)``) and/or
        ``population`` (one ``"child"``/``"adult"``/``None`` per film, or one for all) choose
        each film's map; without either, the pooled map applies.
        """
        op = self.operating_point
        if op is None or (features is None and population is None):
            return apply_platt(logits.float(), self.meta.get("calibration"))
        n = int(logits.numel())
        declared = [population] * n if population is None or isinstance(population, str) else list(population)
        pops = self.populations(features, declared, n)
        return OP.calibrate(op, logits.float(), pops)


def load_cxr_bundle(bundle_dir: str | Path, device: str | torch.device | None = None) -> CxrBundle:
    """Load the chest X-ray classifier bundle, verified, in eval mode."""

    dev = pick_device(str(device) if device else None)
    state, meta = read_state(bundle_dir, map_location="cpu")
    if meta.get("task") != "cxr-pneumonia":
        raise BundleError(f"{bundle_dir}: not a chest X-ray bundle (task {meta.get('task')!r})")
    model = build_model(meta["architecture"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(f"{Path(bundle_dir) / WEIGHTS}: weights do not fit {meta['architecture']} ({exc})") from None
    model.to(dev).eval()
    # Parameters keep requires_grad: Grad-CAM needs the graph. Predictions run under inference_mode.
    return CxrBundle(model, meta, dev, Path(bundle_dir))


def resolve_bundle(model_dir: str | Path | None) -> CxrBundle:
    return load_cxr_bundle(model_dir or get_settings().cxr_model_dir)
