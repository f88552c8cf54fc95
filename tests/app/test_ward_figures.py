"""The ward's trend chart: NEWS2 band shapes exist on every subplot, and only measurements are drawn."""
from __future__ import annotations

import numpy as np

from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.reader import read_record
from cxr_model.vitals.ward import build_ward
from dashboard.ward_figures import TRENDS, trends_figure
from tests.vitals.conftest import write_record

ROWS = [("00:30", "HR", 80), ("06:30", "HR", 125), ("07:30", "HR", 130), ("00:30", "SaO2", 97),
        ("18:30", "SaO2", 90), ("02:30", "NISysABP", 100), ("03:30", "Temp", 38.5)]  # respiration never measured


def _figure(settings, tmp_path, step=20):
    (p,) = build_ward([read_record(write_record(tmp_path, 77, ROWS))], load_vitals_bundle(settings.vitals_model_dir))
    return trends_figure(p, step)


def test_news2_bands_are_drawn_on_every_subplot_even_without_data(settings, tmp_path):
    fig = _figure(settings, tmp_path)
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    yrefs = {s.yref for s in rects}
    assert yrefs == {"y"} | {f"y{i}" for i in range(2, len(TRENDS) + 1)}  # respiration (y2) has no data at all
    assert all(s.layer == "below" and s.fillcolor.startswith("rgba") for s in rects)


def test_only_measured_hours_are_plotted_with_gaps(settings, tmp_path):
    fig = _figure(settings, tmp_path)
    pulse, resp, _, spo2, _ = fig.data
    y = np.array(pulse.y, dtype=float)
    assert np.count_nonzero(~np.isnan(y)) == 3 and y[0] == 80 and np.isnan(y[1:6]).all()
    assert np.isnan(np.array(resp.y, dtype=float)).all()
    s = np.array(spo2.y, dtype=float)
    assert np.count_nonzero(~np.isnan(s)) == 2 and pulse.connectgaps is False  # 18 h apart: not joined


def test_every_channel_has_a_human_label():
    from cxr_model.vitals.reader import channel_names
    from dashboard.tables import channel_label

    labels = [channel_label(c) for c in channel_names() + ["descriptors"]]
    assert all(label not in channel_names() or label in ("Albumin", "Bilirubin", "Cholesterol", "Creatinine", "Glucose",
                                                           "Lactate", "Platelets", "Weight") for label in labels)
    assert len(set(labels)) == len(labels)


def test_the_news2_table_names_a_missing_parameter_in_words(tmp_path):
    from cxr_model.vitals.grid import to_grid
    from cxr_model.vitals.news2 import observation_set
    from dashboard.tables import news2_rows

    grid = to_grid(read_record(write_record(tmp_path, 78, ROWS)))
    table = news2_rows(observation_set(grid, 20)).set_index("Parameter")
    assert list(table.columns) == ["Value", "Points", "Measured"]
    resp = table.loc["Respiration rate (/min)"]
    assert list(resp) == ["not measured", "none (missing)", "not in the last 12 h"]  # never scored as normal
    spo2 = table.loc[next(i for i in table.index if i.startswith("SpO2"))]
    assert list(spo2) == ["90", "3", "2 h ago"]  # measured at 18:30, seen at hour 21; scale 1: <= 91 is 3 points
    cells = {str(v).strip() for v in table.to_numpy().ravel()}
    assert not cells & {"", "-", "None", "nan"}  # a bare "-" is drawn as a list bullet by st.table


def test_the_modebar_has_room_above_the_first_chart_title(settings, tmp_path):
    fig = _figure(settings, tmp_path)
    title = next(a for a in fig.layout.annotations if a.text == TRENDS[0][1])
    assert fig.layout.margin.t >= 60 and title.yref == "paper"  # plotly's toolbar sits in the top margin


def test_a_risk_change_is_whole_tenths_of_a_point_and_never_minus_zero():
    from dashboard.tables import points_change

    assert [f"{points_change(d):+.1f}" for d in (-0.0004, 0.0004, -0.0006, 0.101, -0.2549, 0.0)] == [
        "+0.0", "+0.0", "-0.1", "+10.1", "-25.5", "+0.0"]
