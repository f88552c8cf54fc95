"""The bundled ensemble's card is what ``render_ensemble_card`` makes of its metadata and its held-out test run,
and that run's table gives every metric with its interval (validation, chosen on, without)."""
from __future__ import annotations

import json

from cxr_model.settings import PROJECT_ROOT
from cxr_model.vitals.ensemble_card import _table, render_ensemble_card

BUNDLE = PROJECT_ROOT / "assets" / "models" / "vitals-ensemble"


def _bundle():
    return (json.loads((BUNDLE / "metadata.json").read_text()),
            json.loads((BUNDLE / "test_evaluation" / "metrics.json").read_text()))


def test_the_bundled_card_is_rendered_from_its_metadata_and_test_run():
    meta, test = _bundle()
    assert (BUNDLE / "MODEL_CARD.md").read_text() == render_ensemble_card(meta, test)


def test_the_held_out_table_gives_each_metric_with_its_interval():
    meta, test = _bundle()
    e = test["ensemble_48h"]
    lines = _table(test).splitlines()
    assert lines[0] == ("| score | n (deaths) | AUROC [95% CI] | AUPRC [95% CI] | event-1 [95% CI] (threshold) | "
                        "Brier [95% CI] |")
    row = next(r for r in lines if r.startswith("| LSTM + GBT ensemble, 48h |"))

    def ci(k):
        return f"{e[k]:.3f} [{e[k + '_ci95'][0]:.3f}, {e[k + '_ci95'][1]:.3f}]"
    assert row == (f"| LSTM + GBT ensemble, 48h | {e['n']} ({e['n_positive']}) | {ci('auroc')} | {ci('auprc')} | "
                   f"{ci('event1')} ({e['threshold']:.3f}) | {ci('brier')} |")
    news2 = next(r for r in lines if r.startswith("| NEWS2 >= 7 (highest in 48h) |"))
    assert news2.endswith("(7) | - |")  # a whole-number score's trigger, and no probability: no Brier
    validation = _table(meta["validation"]).splitlines()  # out-of-fold choices: figures without intervals
    assert validation[0] == "| score | n (deaths) | AUROC | AUPRC | event-1 (threshold) | Brier |"
    assert "[" not in next(r for r in validation if r.startswith("| LSTM + GBT ensemble, 48h |"))


def test_the_alert_table_gives_lead_times_in_hours_and_days_with_their_n():
    from cxr_model.vitals.ensemble_card import _alerts

    _, test = _bundle()
    lines = _alerts(test).splitlines()
    a = test["alerts"]
    h = a["median_lead_time_h"]
    model = next(r for r in lines if r.startswith("| model |"))
    assert model.endswith(f"| {h:.0f} ({h / 24:.1f} days), n = {a['n_lead_time']} |")
    assert _alerts({"alerts": {**a, "median_lead_time_h": None, "n_lead_time": 0}}).splitlines()[-1].endswith("| -, n = 0 |")


def test_the_held_out_subgroups_in_the_card():
    from cxr_model.vitals.ensemble_card import _subgroups

    _, test = _bundle()
    rows = test["subgroups_48h"]
    assert [r["grouping"] for r in rows][:1] == ["ICU type"] and {r["grouping"] for r in rows} == {"ICU type", "age", "sex"}
    lines = _subgroups(rows + [{"grouping": "sex", "group": "unknown", "n": 2, "n_positive": 1, "too_few": True}]).splitlines()
    med = next(r for r in rows if r["group"] == "Medical ICU")
    lo, hi = med["auroc_ci95"]
    assert (f"| ICU type | Medical ICU | {med['n']} ({med['n_positive']}) | {med['observed_mortality']:.3f} / "
            f"{med['mean_probability']:.3f} | {med['auroc']:.3f} [{lo:.3f}, {hi:.3f}] | {med['event1']:.3f} |") in "\n".join(lines)
    assert lines[-1] == "| sex | unknown | 2 (1) | too few stays to measure | - | - | - |"
    assert sum(r["n"] for r in rows if r["grouping"] == "age") == test["n"]  # every held-out stay in one band


def test_the_card_names_the_weakest_measured_group():
    from cxr_model.vitals.ensemble_card import _weakest

    rows = [{"grouping": "ICU type", "group": "A", "n": 50, "n_positive": 9, "auroc": 0.60, "auroc_ci95": [0.4, 0.8]},
            {"grouping": "ICU type", "group": "B", "n": 90, "n_positive": 12, "auroc": 0.75, "auroc_ci95": [0.6, 0.9]},
            {"grouping": "age", "group": "C", "n": 80, "n_positive": 30, "auroc": 0.81, "auroc_ci95": [0.7, 0.9]},
            {"grouping": "sex", "group": "D", "n": 4, "n_positive": 2, "too_few": True}]
    assert _weakest(rows) == ("\n\nLowest AUROC among the groups with 10 or more deaths: B (ICU type), 0.750 [0.600, "
                              "0.900] (n = 90, 12 deaths): the model separates deaths from survivors least well there.")
    assert "A (ICU type), 0.600" in _weakest(rows, min_deaths=9)  # A has 9 deaths: left out at 10
    assert _weakest(rows[:1]) == _weakest(rows[3:]) == ""
