"""The radiograph viewer of the X-ray review page: a Streamlit custom component of our own.

``frontend/`` holds plain JS + canvas (``index.html``, ``viewer.js``, ``viewer.css``), vendored in
the repository: no npm build and nothing downloaded at run time. Window/level (drag), zoom (wheel),
pan, fit, 1:1, invert, map opacity and reset are drawn in the browser and never rerun the script;
the two panes of "side by side" share one view, so they stay synchronised.

The pixels reach the browser once per study: they are registered with Streamlit's media file
manager (the store behind ``st.image``) and the component gets only their URL, which is the same on
every rerun of the same study, so the browser fetches them once. The image is sent as raw
little-endian ``uint16`` values (``value = stored * scale + offset``), so a DICOM's window/level
works on its real modality values, not on an 8-bit copy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit.components.v1 as components
from streamlit import runtime

from cxr_model.imaging.dicom_header import Window

FRONTEND = Path(__file__).resolve().parent / "frontend"
_component = components.declare_component("cxr_viewer", path=str(FRONTEND))
#: Tallest pane, in CSS pixels (a 1080p screen shows the page's controls above it).
MAX_HEIGHT = 760


@dataclass(frozen=True)
class Pixels:
    """A display image as the viewer receives it.

    Attributes:
        data: ``uint16`` values, row-major, little-endian bytes (``height * width * 2`` bytes).
        width, height: in pixels (the study's bounded display size, long side <= 2048).
        offset, scale: ``value = stored * scale + offset`` in the image's own units.
        window: the window shown on opening; presets: ``(name, center, width)`` offered.
        invert: low values shown white on opening (MONOCHROME1).
    """

    data: bytes
    width: int
    height: int
    offset: float
    scale: float
    window: Window
    presets: tuple[tuple[str, float, float], ...]
    invert: bool


def _uint16(values: np.ndarray) -> tuple[bytes, float, float]:
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    scale = max((hi - lo) / 65535.0, 1.0) if hi - lo > 65535 else 1.0
    stored = np.rint((v - lo) / scale).clip(0, 65535).astype("<u2")
    return stored.tobytes(), lo, scale


def dicom_pixels(raw: np.ndarray, presets: dict[str, Window], monochrome1: bool) -> Pixels:
    """Modality-LUT values ``(H, W)`` (``review.DicomView.raw``) with the file's presets; opens on the first."""
    data, offset, scale = _uint16(raw)
    first = next(iter(presets.values()))
    return Pixels(data, raw.shape[1], raw.shape[0], offset, scale, first,
                  tuple((k, float(w.center), float(w.width)) for k, w in presets.items()), monochrome1)


def display_pixels(display: np.ndarray) -> Pixels:
    """An 8-bit display image ``uint8 (H, W)`` (PNG/JPEG studies): values 0-255, full window."""
    data = np.ascontiguousarray(display, dtype="<u2").tobytes()
    full = Window(127.5, 256.0)
    return Pixels(data, display.shape[1], display.shape[0], 0.0, 1.0, full,
                  (("Full range", full.center, full.width),), False)


def cam_bytes(cam: np.ndarray) -> bytes:
    """A CAM ``float (S, S)`` in [0, 1] as ``uint8`` bytes, row-major."""
    return np.uint8(np.rint(255 * np.clip(np.asarray(cam, dtype=np.float32), 0, 1))).tobytes()


def _url(data: bytes, coordinates: str) -> str:
    return runtime.get_instance().media_file_mgr.add(data, "application/octet-stream", coordinates)


def viewer(pixels: Pixels, study_key: str, cam: np.ndarray | None, method: str, opacity: float,
           side_by_side: bool, key: str = "xray_viewer"):
    """Draw the viewer; returns the last shortcut the reviewer pressed in it, or ``None``.

    The value is ``{"action": "next" | "previous" | "agree" | "disagree" | "uncertain", "n": ms}``
    (``n`` tells two presses of the same key apart). Nothing else the viewer does reaches the server.
    ``cam`` ``None`` shows the radiograph alone (e.g. a film outside the model's scope).
    """
    image_url = _url(pixels.data, f"{key}.image")
    cam_url = _url(cam_bytes(cam), f"{key}.cam") if cam is not None else None
    return _component(
        study_key=study_key, image_url=image_url, width=pixels.width, height=pixels.height,
        offset=pixels.offset, scale=pixels.scale, value_span=_span(pixels), window={"center": pixels.window.center, "width": pixels.window.width},
        presets=[list(p) for p in pixels.presets], invert=pixels.invert, cam_url=cam_url,
        cam_size=0 if cam is None else int(cam.shape[0]), method=method, opacity=float(opacity),
        side_by_side=bool(side_by_side and cam is not None), max_height=MAX_HEIGHT, key=key, default=None)


def _span(pixels: Pixels) -> float:
    """The value range the W/L drag sweeps: the widest preset (the whole image for "Full range")."""
    return max(w for _, _, w in pixels.presets)
