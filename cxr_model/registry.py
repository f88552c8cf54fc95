"""Model bundles: ``<dir>/model.pt`` (a state_dict) + ``metadata.json`` (+ ``MODEL_CARD.md``).

The one loader for every bundled model. It checks the weights' sha256 against the metadata and
loads with ``torch.load(..., weights_only=True)``, so a bundle is never unpickled as code.
"""
from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

WEIGHTS = "model.pt"
METADATA = "metadata.json"


class BundleError(RuntimeError):
    """A model bundle that is missing, altered or inconsistent; the message names the file."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_metadata(bundle_dir: str | Path) -> dict[str, Any]:
    path = Path(bundle_dir) / METADATA
    if not path.exists():
        raise BundleError(f"{path}: model metadata not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: invalid JSON ({exc})") from None


def metadata_or_none(bundle_dir: str | Path) -> dict[str, Any] | None:
    """The bundle's ``metadata.json``, or ``None`` when it is missing or unreadable (the UI then says so)."""
    try:
        return read_metadata(bundle_dir)
    except BundleError:
        return None


def model_id(meta: dict[str, Any]) -> str:
    """``name@version`` of a bundle's metadata: how runs, reviews and cards name the model."""
    return f"{meta.get('name', '?')}@{meta.get('version', '?')}"


def read_state(bundle_dir: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, dict[str, Any]]:
    """Verify and load a bundle's state_dict and metadata (no model is built)."""
    bundle_dir = Path(bundle_dir)
    meta = read_metadata(bundle_dir)
    weights = bundle_dir / WEIGHTS
    if not weights.exists():
        raise BundleError(f"{weights}: model weights not found")
    digest = sha256_file(weights)
    if digest != meta.get("sha256"):
        raise BundleError(f"{weights}: sha256 {digest[:12]}... does not match metadata ({str(meta.get('sha256'))[:12]}...)")
    state = torch.load(weights, map_location=map_location, weights_only=True)
    return state, meta


def save_bundle(bundle_dir: str | Path, state_dict: dict, metadata: dict[str, Any],
                card: Callable[[dict[str, Any]], str] | None = None) -> Path:
    """Write weights, then metadata carrying their sha256 and the torch version, then the model card.

    Args:
        card: the model's ``render_card(meta) -> str``; it renders ``MODEL_CARD.md`` from the
            metadata exactly as written (read back from the JSON), so card and metadata agree.
    """
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    weights = bundle_dir / WEIGHTS
    torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, weights)
    metadata = dict(metadata, sha256=sha256_file(weights), torch_version=torch.__version__.split("+")[0])
    text = json.dumps(metadata, indent=2) + "\n"
    (bundle_dir / METADATA).write_text(text)
    if card is not None:
        (bundle_dir / "MODEL_CARD.md").write_text(card(json.loads(text)))
    return bundle_dir


class SharedModel:
    """The one network of a bundle, shared by every thread of the process, with its lock.

    Streamlit serves each session in its own thread, all over one cached bundle. A forward pass is
    not safe beside another thread's hooks: Grad-CAM and the OOD features hook layers of the one
    module, so a forward run meanwhile by another thread feeds its activations into them (a wrong
    CAM, another image's OOD score, features of the wrong shape). The lock therefore lives here,
    with the network, not in the callers:

    * ``shared(x)`` runs one forward under the lock;
    * ``with shared.hold() as net:`` holds the lock for a whole hook window (register hooks,
      forward, backward, remove hooks) and yields the raw ``nn.Module``.

    The lock is re-entrant, so a forward inside ``hold()`` on the same thread does not wait.
    Other attributes (``parameters()``, ``modules()``, ``training``, ...) are the network's.
    """

    def __init__(self, net: nn.Module):
        self._net = net
        self._lock = threading.RLock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._net(*args, **kwargs)

    @contextmanager
    def hold(self) -> Iterator[nn.Module]:
        """Hold the lock and yield the raw network (for work that hooks its layers)."""
        with self._lock:
            yield self._net

    def sibling(self, net: nn.Module) -> "SharedModel":
        """Another network under this one's lock, for a network built on this one's modules (their
        hooks and forwards must not interleave either)."""
        other = SharedModel(net)
        other._lock = self._lock
        return other

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found on the wrapper: the network's attributes and methods.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._net, name)

    def __repr__(self) -> str:
        return f"SharedModel({self._net.__class__.__name__})"


