"""A stay on the fixed hourly grid: last value per hour, masks, hours since observed."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cxr_model.vitals.reader import N_HOURS, Record, channel_names, channel_table, normal_values


@dataclass
class Grid:
    """A stay on the hourly grid. Step ``t`` holds what was observed in hour ``(t, t+1]``.

    Attributes:
        record_id: the challenge RecordID.
        values: ``[48, C]`` float32, cleaned values in their units, forward filled, starting from
            the channel's normal value before the first observation.
        mask: ``[48, C]`` float32, 1 where the channel was observed in that hour.
        delta: ``[48, C]`` float32, hours since the channel was last observed (0 when observed in
            that hour; hours since admission before the first observation).
        descriptors: static descriptors (``nan`` when unknown).
    """

    record_id: int
    values: np.ndarray
    mask: np.ndarray
    delta: np.ndarray
    descriptors: dict[str, float] = field(default_factory=dict)

    @property
    def channels(self) -> list[str]:
        return channel_names()


def to_grid(record: Record) -> Grid:
    """Discretise a record onto 48 hourly steps (last value per hour; Urine summed; MechVent max)."""
    names = channel_names()
    index = {n: i for i, n in enumerate(names)}
    aggs = [c["agg"] for c in channel_table()["channels"]]
    n_c = len(names)
    raw = np.full((N_HOURS, n_c), np.nan, dtype=np.float32)
    for minutes, param, value in sorted(record.events, key=lambda e: e[0]):
        # an observation at exactly HH:00 belongs to the hour that ends then (00:00 to step 0)
        t = min(max(math.ceil(minutes / 60) - 1, 0), N_HOURS - 1)
        c = index[param]
        prev = raw[t, c]
        if aggs[c] == "sum" and not np.isnan(prev):
            raw[t, c] = prev + value
        elif aggs[c] == "max" and not np.isnan(prev):
            raw[t, c] = max(prev, value)
        else:
            raw[t, c] = value
    mask = (~np.isnan(raw)).astype(np.float32)
    values = np.empty_like(raw)
    delta = np.empty_like(raw)
    last = normal_values().copy()
    since = np.zeros(n_c, dtype=np.float32)
    for t in range(N_HOURS):
        obs = mask[t] > 0
        last = np.where(obs, raw[t], last)
        since = np.where(obs, 0.0, since + 1.0).astype(np.float32)
        values[t] = last
        delta[t] = since
    return Grid(record.record_id, values, mask, delta, dict(record.descriptors))
