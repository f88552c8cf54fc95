"""Settings for the whole project, read once from environment variables.

Every path or threshold that code needs comes from :func:`get_settings`; nothing is baked into
modules and nothing is parsed at import time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "cxr-pneumonia-resnet18-v2.6"


@dataclass(frozen=True)
class Settings:
    """Frozen runtime settings.

    Attributes:
        data_dir: root of the shared data (``cxr/`` and ``vitals/`` below it).
        models_dir: folder holding the model bundles (``<name>/model.pt`` + ``metadata.json``).
        cxr_model_name: bundle name of the chest X-ray classifier.
        vitals_model_name: bundle name of the vitals early-warning model.
        db_url: SQLAlchemy URL of the reviewer-decision store.
        device: ``"cuda"`` when available and not disabled, else ``"cpu"``.
        runs_dir: where the UI writes evaluation runs (``CXR_RUNS_DIR``).
        state_dir: local state (``CXR_STATE_DIR``, default ``.state/``): review database, sha256 cache.
        site_dir: saved site profiles (``CXR_SITE_DIR``, default ``$XDG_DATA_HOME/cxr-dashboard/sites``,
            i.e. ``~/.local/share/cxr-dashboard/sites``); never inside ``data_dir`` (read-only data).
    """

    data_dir: Path
    models_dir: Path
    cxr_model_name: str
    vitals_model_name: str
    db_url: str
    device: str
    runs_dir: Path
    state_dir: Path = PROJECT_ROOT / ".state"
    site_dir: Path = Path.home() / ".local" / "share" / "cxr-dashboard" / "sites"

    @property
    def cxr_model_dir(self) -> Path:
        return self.models_dir / self.cxr_model_name

    @property
    def vitals_model_dir(self) -> Path:
        return self.models_dir / self.vitals_model_name

    @property
    def kermany_dir(self) -> Path:
        return self.data_dir / "cxr" / "kermany"

    @property
    def dicom_dir(self) -> Path:
        return self.data_dir / "cxr" / "dicom"

    @property
    def nih_adult_dir(self) -> Path:
        return self.data_dir / "cxr" / "nih_adult"

    @property
    def physionet_dir(self) -> Path:
        return self.data_dir / "vitals" / "physionet2012"


def _default_device() -> str:
    if os.environ.get("CXR_DEVICE"):
        return os.environ["CXR_DEVICE"]
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a hard requirement
        return "cpu"


def get_settings() -> Settings:
    """Read the settings from the environment (``CXR_*`` variables), with defaults."""
    env = os.environ
    data_dir = Path(env.get("CXR_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
    models_dir = Path(env.get("CXR_MODELS_DIR", PROJECT_ROOT / "assets" / "models"))
    state_dir = Path(env.get("CXR_STATE_DIR", PROJECT_ROOT / ".state"))
    db_default = f"sqlite:///{state_dir / 'reviews.sqlite'}"
    return Settings(
        data_dir=data_dir,
        models_dir=models_dir,
        cxr_model_name=env.get("CXR_MODEL_NAME", DEFAULT_MODEL_NAME),
        vitals_model_name=env.get("CXR_VITALS_MODEL_NAME", "vitals-ensemble"),
        db_url=env.get("CXR_DB_URL", db_default),
        device=_default_device(),
        runs_dir=Path(env.get("CXR_RUNS_DIR", PROJECT_ROOT / "runs")),
        state_dir=state_dir,
        site_dir=Path(env.get("CXR_SITE_DIR") or Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
                      / "cxr-dashboard" / "sites"),
    )
