"""``cxr-model vitals predict RECORD... [--hour H] [--json]``: the bundle's risk and NEWS2 at one hour of each stay."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from cxr_model.settings import get_settings
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.news2 import news2_record
from cxr_model.vitals.predict import last_hour, predict_records
from cxr_model.vitals.reader import read_record

IDS = (132539, 132541, 132543)


def _predict(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cxr_model", "vitals", "predict", *map(str, args)],
                          capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture(scope="module")
def bundle():
    return load_vitals_bundle(get_settings().vitals_model_dir)


def test_json_gives_the_bundles_risk_and_news2_at_the_hour_asked(physionet_dir, bundle):
    paths = [physionet_dir / "set-a" / f"{i}.txt" for i in IDS]
    r = _predict(*paths, "--hour", 14, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == bundle.model_id and out["threshold"] == bundle.threshold and out["errors"] == []
    grids = [to_grid(read_record(p)) for p in paths]
    risk = bundle.risk(grids)
    assert [s["record_id"] for s in out["stays"]] == list(IDS)
    for s, g, r14 in zip(out["stays"], grids, risk):
        assert s["hour"] == 14 and s["risk"] == pytest.approx(r14[13], abs=1e-12)
        assert s["alerting"] == (r14[13] >= bundle.threshold)
        n = news2_record(g, 14)
        assert s["news2"] == {k: n[k] for k in ("aggregate", "level", "incomplete")}


def test_a_bad_file_is_named_and_the_others_are_scored(physionet_dir, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("Time;Parameter;Value\n")
    good = physionet_dir / "set-a" / f"{IDS[0]}.txt"
    r = _predict(good, bad)
    assert r.returncode == 1
    assert "error: notes.txt:1: header is not 'Time,Parameter,Value'" in r.stderr
    assert f"record {IDS[0]} at hour 48: risk" in r.stdout and "Decision support, not a diagnosis" in r.stdout
    r = _predict(bad)  # nothing scored
    assert r.returncode == 2 and r.stdout.count("record ") == 0
    r = _predict(good, "--hour", 49)
    assert r.returncode == 2 and "hour 49 is outside 1-48" in r.stderr


def test_default_hour_is_each_records_last_and_the_first_crossing_counts_only_hours_up_to_it(record_writer, bundle):
    early = read_record(record_writer(901, [("00:30", "HR", 80), ("05:40", "HR", 150), ("05:40", "GCS", 3)]))
    empty = read_record(record_writer(902, []))
    assert (last_hour(early), last_hour(empty)) == (6, 1)
    risk = bundle.risk([to_grid(early)])[0]
    # the pulse of 150 and GCS 3 charted in hour 6 raise the risk above every earlier hour's
    assert risk[5] > risk[:5].max()
    low = replace(bundle, meta=dict(bundle.meta, threshold=dict(bundle.meta["threshold"], value=float(risk[5]))))
    rows = predict_records(low, [early, empty])
    assert (rows[0]["hour"], rows[0]["first_alert_hour"], rows[0]["alerting"]) == (6, 6, True)
    assert rows[1]["hour"] == 1 and rows[1]["first_alert_hour"] is None
    at5 = predict_records(low, [early], hour=5)[0]  # hour 6 is not seen at hour 5
    assert (at5["first_alert_hour"], at5["alerting"], at5["risk"]) == (None, False, pytest.approx(risk[4]))
    assert set(rows[0]) == {"record_id", "source", "hour", "risk", "alerting", "first_alert_hour", "news2"}
    assert (rows[0]["record_id"], rows[0]["source"]) == (901, "901.txt")
    assert set(rows[0]["news2"]) == {"aggregate", "level", "incomplete"}
    # a reading one minute into hour 3 makes hour 3 the last; the first and last hours of the grid are accepted
    assert last_hour(read_record(record_writer(903, [("02:01", "HR", 80)]))) == 3
    assert [r["hour"] for r in (predict_records(bundle, [early], hour=h)[0] for h in (1, 48))] == [1, 48]
    with pytest.raises(ValueError, match="hour 49 is outside 1-48"):
        predict_records(bundle, [early], hour=49)
    with pytest.raises(ValueError, match="hour 0 is outside 1-48"):
        predict_records(bundle, [early], hour=0)
    assert predict_records(bundle, []) == []
