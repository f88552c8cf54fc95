"""The normaliser fitted on training stays: grid -> standardised GRU-D-style features."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import N_HOURS, RecordError, channel_names, channel_table


STATIC_FEATURES = ["age", "male", "gender_known", "height", "height_known", "weight", "weight_known",
                   "icu_coronary", "icu_cardiac_surgery", "icu_medical", "icu_surgical"]
#: ``log1p(h) / log1p(48)`` for whole hours ``h = 0..48``: a grid's hours since observed are whole hours.
_LOG_HOURS = (np.log1p(np.arange(N_HOURS + 1, dtype=np.float32)) / np.log1p(float(N_HOURS))).astype(np.float32)


def log_hours(delta: np.ndarray) -> np.ndarray:
    """Hours since observed -> ``log1p(hours) / log1p(48)`` float32, looked up for whole hours 0..48."""
    hours = delta.astype(np.intp)
    if delta.size and hours.min() >= 0 and hours.max() <= N_HOURS and np.array_equal(hours, delta):
        return _LOG_HOURS[hours]
    return (np.log1p(delta) / np.log1p(float(N_HOURS))).astype(np.float32)


@dataclass
class Normaliser:
    """Standardises grid values per channel (after log1p where the table says so) and descriptors.

    Fitted on training stays only (observed values, not forward-filled ones); saved as JSON.

    Attributes:
        channels: channel names, in column order.
        mean, std: per channel, on the transformed scale.
        static_mean, static_std: for age, height, weight.
    """

    channels: list[str]
    mean: list[float]
    std: list[float]
    static_mean: dict[str, float]
    static_std: dict[str, float]
    clip: float = 6.0

    @classmethod
    def fit(cls, grids: list[Grid]) -> Normaliser:
        names = channel_names()
        logs = np.array([c["transform"] == "log" for c in channel_table()["channels"]])
        vals = np.stack([g.values for g in grids])  # [N, T, C]
        mask = np.stack([g.mask for g in grids]) > 0
        vals = np.where(logs, np.log1p(np.clip(vals, 0, None)), vals)
        mean, std = [], []
        for c in range(len(names)):
            v = vals[:, :, c][mask[:, :, c]]
            m = float(v.mean()) if v.size else 0.0
            s = float(v.std()) if v.size > 1 else 1.0
            mean.append(m)
            std.append(s if s > 1e-6 else 1.0)
        s_mean, s_std = {}, {}
        for key in ("Age", "Height", "Weight"):
            v = np.array([g.descriptors.get(key, math.nan) for g in grids], dtype=np.float64)
            v = v[np.isfinite(v)]
            s_mean[key] = float(v.mean()) if v.size else 0.0
            s_std[key] = float(v.std()) if v.size > 1 and v.std() > 1e-6 else 1.0
        return cls(names, mean, std, s_mean, s_std)

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.__dict__, indent=1) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> Normaliser:
        data = json.loads(Path(path).read_text())
        norm = cls(**data)
        if norm.channels != channel_names():
            raise RecordError(f"{Path(path).name}: normaliser channels do not match channels.json")
        return norm

    def static_matrix(self, descriptors: list[dict[str, float]]) -> np.ndarray:
        """Descriptors of ``N`` stays -> ``[N, 11]`` float32 (see ``STATIC_FEATURES``); unknown -> 0 with a flag."""
        def col(key):
            return np.array([d.get(key, math.nan) for d in descriptors], dtype=np.float64).reshape(-1)

        def z(key):
            v = col(key)
            known = np.isfinite(v)
            return np.where(known, (v - self.static_mean[key]) / self.static_std[key], 0.0), known

        age, _ = z("Age")
        height, h_known = z("Height")
        weight, w_known = z("Weight")
        g, icu = col("Gender"), col("ICUType")
        cols = [age, g == 1, np.isfinite(g), height, h_known, weight, w_known, *(icu == k for k in (1, 2, 3, 4))]
        return np.stack(cols, axis=1).astype(np.float32).reshape(len(descriptors), len(STATIC_FEATURES))

    def features(self, grid: Grid) -> np.ndarray:
        """GRU-D-style inputs for one stay: ``[48, 3C + 11]`` float32 (one row of :meth:`features_batch`)."""
        return self.features_batch([grid])[0]

    def features_batch(self, grids: list[Grid]) -> np.ndarray:
        """GRU-D-style inputs for ``N`` stays at once: ``[N, 48, 3C + 11]`` float32.

        Columns: standardised forward-filled values ``[C]``, masks ``[C]``, time since last
        observation as ``log1p(hours) / log1p(48)`` ``[C]``, then the static vector ``[11]``
        repeated at every step. Element-wise in float32, so a stay gets the same numbers alone
        or in any batch.
        """
        c = len(self.channels)
        out = np.empty((len(grids), N_HOURS, self.n_features), dtype=np.float32)
        if not grids:
            return out
        logs = np.array([ch["transform"] == "log" for ch in channel_table()["channels"]])
        v = np.stack([g.values for g in grids])
        v[..., logs] = np.log1p(np.clip(v[..., logs], 0, None))
        v -= np.asarray(self.mean, np.float32)
        v /= np.asarray(self.std, np.float32)
        np.clip(v, -self.clip, self.clip, out=out[..., :c])
        np.stack([g.mask for g in grids], out=out[..., c:2 * c])
        out[..., 2 * c:3 * c] = log_hours(np.stack([g.delta for g in grids]))
        out[..., 3 * c:] = self.static_matrix([g.descriptors for g in grids])[:, None, :]
        return out

    @property
    def n_features(self) -> int:
        return 3 * len(self.channels) + len(STATIC_FEATURES)
