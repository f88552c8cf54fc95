"""The vitals tab's bar chart draws each metric's 95 % interval where the run carries one (held-out test),
from the bundled test run; rows without intervals (validation choices) draw none."""
from __future__ import annotations

import json

import pytest

from dashboard.vitals_tab import vitals_figure


def test_held_out_bars_carry_their_intervals_and_validation_bars_none(settings):
    test = json.loads((settings.vitals_model_dir / "test_evaluation" / "metrics.json").read_text())
    rows = [dict(test[k], group=k) for k in ("ensemble_48h", "news2_48h", "saps1")]
    fig = vitals_figure(rows, "held-out")
    for trace, m in zip(fig.data, ("auroc", "auprc", "event1")):
        assert trace.error_y.visible
        for r, up, down in zip(rows, trace.error_y.array, trace.error_y.arrayminus):
            lo, hi = r[f"{m}_ci95"]
            assert up == pytest.approx(max(hi - r[m], 0)) and down == pytest.approx(max(r[m] - lo, 0))
    e = rows[0]
    assert fig.data[2].error_y.array[0] == pytest.approx(e["event1_ci95"][1] - e["event1"])
    assert fig.data[2].error_y.array[0] > 0.05  # event-1 on 111 deaths: a wide interval
    validation = [{k: v for k, v in r.items() if not k.endswith("_ci95")} for r in rows]
    assert not any(t.error_y.visible for t in vitals_figure(validation, "validation").data)
