"""Which inputs moved the risk: occlusion over channels.

For the risk at hour ``t``, each channel in turn is replaced by "never measured" (normal value,
mask 0, time since admission) up to ``t``; the contribution is the actual risk minus the occluded
risk. Positive = that channel's measurements raised the risk. The static descriptors are occluded
as one group ("descriptors": unknown age, sex, height, weight and ICU type).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import channel_names, normal_values


def occlusion(bundle, grid: Grid, step: int) -> list[dict]:
    """Contributions to the risk at ``step`` (0-based hour index), largest magnitude first.

    Returns:
        ``[{"input": name, "contribution": float (risk units), "observed": bool}, ...]``
    """
    names = channel_names()
    normals = normal_values()
    variants = [grid]
    for c in range(len(names)):
        v, m, d = grid.values.copy(), grid.mask.copy(), grid.delta.copy()
        v[: step + 1, c] = normals[c]
        m[: step + 1, c] = 0.0
        d[: step + 1, c] = np.arange(1, step + 2, dtype=np.float32)
        variants.append(replace(grid, values=v, mask=m, delta=d))
    variants.append(replace(grid, descriptors={k: math.nan for k in grid.descriptors}))
    risk = bundle.risk(variants)[:, step]  # causal: hours after ``step`` do not change it
    observed = grid.mask[: step + 1].max(axis=0) > 0
    out = [{"input": n, "contribution": float(risk[0] - risk[i + 1]), "observed": bool(observed[i])}
           for i, n in enumerate(names)]
    out.append({"input": "descriptors", "contribution": float(risk[0] - risk[-1]), "observed": True})
    return sorted(out, key=lambda r: -abs(r["contribution"]))
