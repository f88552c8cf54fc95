"""``MODEL_CARD.md`` of the LSTM + GBT ensemble bundle, from its metadata and its held-out test run."""
from __future__ import annotations

from cxr_model.metrics.format import fmt_lead_time, fmt_threshold
from cxr_model.metrics.format import fmt_metric as _fmt
from cxr_model.vitals.summary import base_feature_count

LABELS = {"ensemble": "LSTM + GBT ensemble", "lstm": "LSTM alone", "gbt": "GBT alone"}


def _label(key: str) -> str:
    if key == "saps1":
        return "SAPS-I (admission)"
    name, _, rest = key.partition("_")
    window = rest.split("_")[0]
    if name == "news2":
        return f"NEWS2 >= {7 if rest.endswith('ge7') else 5} (highest in {window})"
    return f"{LABELS.get(name, name)}, {window}"


def _with_ci(block: dict, key: str) -> str:
    """``0.879 [0.848, 0.905]``: the metric and its 95 % interval where the block has one (held-out runs)."""
    ci = block.get(f"{key}_ci95")
    return _fmt(block[key]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def _table(groups: dict) -> str:
    rows = [f"| {_label(k)} | {v['n']} ({v['n_positive']}) | {_with_ci(v, 'auroc')} | {_with_ci(v, 'auprc')} | "
            + (f"{_with_ci(v, 'event1')} ({fmt_threshold(v['threshold'])})" if v.get("threshold") is not None else "-")
            + f" | {_with_ci(v, 'brier') if 'brier' in v else '-'} |"
            for k, v in groups.items() if isinstance(v, dict) and "auroc" in v]
    cis = any(f"{m}_ci95" in v for v in groups.values() if isinstance(v, dict)
              for m in ("auroc", "auprc", "event1", "brier"))
    ci = " [95% CI]" if cis else ""
    head = (f"| score | n (deaths) | AUROC{ci} | AUPRC{ci} | event-1{ci} (threshold) | Brier{ci} |\n"
            "|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def _alerts(m: dict) -> str:
    head = "| alert source | alerts per patient-day | deaths alerted | survivors alerted | median lead time in hours; n deaths |\n|---|---|---|---|---|"
    names = {"alerts": "model", "alerts_news2_5": "NEWS2 >= 5", "alerts_news2_7": "NEWS2 >= 7",
             "alerts_combined": "model or NEWS2 >= 5"}
    rows = [f"| {label} | {_fmt(a['alerts_per_patient_day'])} | {_fmt(a['deaths_alerted'])} | "
            f"{_fmt(a['survivors_alerted'])} | {fmt_lead_time(a['median_lead_time_h'])}, n = {a['n_lead_time']} |"
            for key, label in names.items() if (a := m.get(key))]
    return head + "\n" + "\n".join(rows)


def _subgroups(rows: list[dict]) -> str:
    """The held-out subgroup rows (``subgroups_48h``) as a table; groups too small to measure show counts only."""
    head = ("| grouping | group | n (deaths) | observed mortality / mean predicted risk | AUROC [95% CI] | event-1 | "
            "NEWS2 AUROC [95% CI] |\n|---|---|---|---|---|---|---|")
    lines = [f"| {r['grouping']} | {r['group']} | {r['n']} ({r['n_positive']}) | "
             + ("too few stays to measure | - | - | - |" if r.get("too_few") else
                f"{_fmt(r['observed_mortality'])} / {_fmt(r['mean_probability'])} | {_with_ci(r, 'auroc')} | "
                f"{_fmt(r['event1'])} | {_with_ci(r, 'news2_auroc')} |") for r in rows]
    return head + "\n" + "\n".join(lines)


def _weakest(rows: list[dict], min_deaths: int = 10) -> str:
    """One sentence naming the measured group with the lowest AUROC (of those with ``min_deaths`` deaths or more)."""
    measured = [r for r in rows if not r.get("too_few") and r["n_positive"] >= min_deaths and r.get("auroc") is not None]
    if not measured:
        return ""
    w = min(measured, key=lambda r: r["auroc"])
    return (f"\n\nLowest AUROC among the groups with {min_deaths} or more deaths: {w['group']} ({w['grouping']}), "
            f"{_with_ci(w, 'auroc')} (n = {w['n']}, {w['n_positive']} deaths): the model separates deaths from "
            "survivors least well there.")


def _model_section(meta: dict) -> str:
    comp, hp = meta["components"], meta["hyperparameters"]
    gp = comp["gbt_params"]
    if "weight_scores_oof" in comp:
        weight = (f"w = {comp['weight_lstm']} (of 0, 0.1, ..., 1: the highest mean AUROC at 24 h and 48 h on the "
                  f"{gp['folds']}-fold out-of-fold log-odds of train + validation)")
        lstm = (f"- LSTM: {comp['lstm']} (the number of epochs with the best mean out-of-fold AUROC at 24 h and 48 h, "
                f"of 1 to {hp['epochs_max']}; hidden {hp['hidden']}, GRU-D-style inputs; normaliser fitted on train + "
                "validation), Platt-scaled per hour on out-of-fold logits.")
        folds_deployed = comp.get("deploy") == "folds"
        per_fold = hp["members"] // gp["folds"] if folds_deployed else hp["members"]
        flags = (f" --lstm-members {per_fold}" + (f" --tree-bags {gp['bags']}" if gp.get("bags", 1) > 1 else "")
                 + (" --deploy folds" if folds_deployed else ""))
        cal = ("- The mix is Platt-scaled per hour on the same out-of-fold predictions."
               + (" The bundled models are the cross-validation's own fold models, averaged (not models refitted on "
                  "all stays), so the bundled risk is on the scale that calibration and the threshold were fitted on."
                  if folds_deployed else "")
               + "\n\nTrained by `cxr-model vitals train-ensemble --records set-a --outcomes Outcomes-a.txt --lstm "
               f"assets/models/vitals-lstm --out DIR{flags}` ({gp['folds']} folds, up to {hp['epochs_max']} epochs, "
               f"{hp['members']} LSTMs) in {meta.get('train_seconds', '?')} s on 2 shared CPU cores.")
    else:
        weight = f"w = {comp['weight_lstm']} (fixed before any score was seen)"
        lstm = (f"- LSTM: the `vitals-lstm` bundle unchanged ({hp['members']} LSTMs, hidden {hp['hidden']}, GRU-D-style "
                f"inputs; weights copied as `model.pt`), Platt-scaled per hour on validation.")
        cal = "- The ensemble is Platt-scaled per hour on validation with out-of-fold trees."
    return f"""Risk at hour t = Platt_t(w * logit(LSTM risk) + (1 - w) * logit(GBT risk)), {weight}.
{lstm}
- GBT: scikit-learn HistGradientBoosting (learning rate {gp['learning_rate']}, {gp['max_iter']} trees of at most
  {gp['max_leaf_nodes']} leaves, min {gp['min_samples_leaf']} rows per leaf, L2 {gp.get('l2_regularization', 0)}{_bag_words(gp)}) on {len(comp['features'])} per-window summary features
  (last, first, min, max, mean, count, hours since last, per channel{_trend_words(comp['features'])},
  from hours <= t only; never-measured = missing, not a normal value) at hours {gp['training_hours']}, trained on
  {_tree_data(comp, gp)}. Platt-scaled per hour on {gp['folds']}-fold out-of-fold predictions (cross-validated
  calibration). Stored as numeric arrays (`trees.npz`, loaded with `allow_pickle=False`, sha256 in the
  metadata), evaluated in numpy.
{cal}"""


def _tree_data(comp: dict, gp: dict) -> str:
    if comp.get("deploy") != "folds":
        return "train + validation"
    return f"train + validation: the {gp['folds']} fold models' trees, each fitted on {gp['folds'] - 1} folds, log-odds averaged"


def _bag_words(gp: dict) -> str:
    if gp.get("bags", 1) <= 1:
        return ""
    return (f"; {gp['bags']} such models with different seeds, each split choosing among a random "
            f"{gp['max_features']:.0%} of the features, their log-odds averaged")


def _trend_words(names: list[str]) -> str:
    if len(names) <= base_feature_count():
        return ""
    return ("; standard deviation, least-squares slope, last-6-hour mean and its change, hour of first "
            "observation, per channel; urine output sums (stay, last 6 and 12 h, per kg per hour), charting "
            "density, PaO2/FiO2, BUN/creatinine, shock index, lowest systolic and mean pressure")


def _extra(td: dict) -> str:
    e = td.get("extra")
    return "" if not e else (f"\nAlso trained on {e['n']} more labelled stays ({e['n_positive']} deaths) from `{e['records']}` "
                             f"(outcomes `{e['outcomes']}`): in every fold and choice beside train + validation, never "
                             "tested on (split `extra` in `splits.csv`).")


def _validation_title(meta: dict) -> str:
    if meta.get("validation_kind"):
        return (f"Validation: {meta['validation_kind']} (n = {meta['validation']['ensemble_48h']['n']}; calibration, "
                "weight and thresholds were chosen here, so these figures are optimistic)")
    return "Validation (optimistic: early stopping, calibration and thresholds were chosen here; trees out-of-fold)"


def render_ensemble_card(meta: dict, test: dict | None = None) -> str:
    td = meta["training_data"]
    test_part = "Not yet evaluated: run `cxr-model vitals evaluate --split test`." if not test else (
        f"`cxr-model vitals evaluate --split test` (n = {test['n']}, never used for training, calibration or "
        f"thresholds):\n\n{_table(test)}\n\nAlert burden and lead time on the same stays (lead time: first alert "
        f"to death, whole days only in the PhysioNet 'Survival' field, so +-24 h):\n\n{_alerts(test)}"
        + ("" if not test.get("subgroups_48h") else
           "\n\nBy subgroup of the same stays (48 h risk at the fixed alert threshold; groups from the descriptors; "
           f"TRIPOD+AI item 23a):\n\n{_subgroups(test['subgroups_48h'])}{_weakest(test['subgroups_48h'])}"))
    return f"""# {meta['name']} {meta['version']}: in-hospital mortality early warning from ICU vitals

**Decision support, not a diagnosis.** The risk is a statistical estimate for ward prioritisation; it
does not replace clinical assessment, NEWS2 escalation policy or a clinician's judgement.

## Intended use
Hourly risk of in-hospital death for adult ICU stays, from the vital signs, laboratory values and
descriptors recorded so far in the first 48 hours. An alert is raised when the risk reaches
{meta['threshold']['value']:.3f} ({meta['threshold']['rule']}). On the ward page an alert is also
raised by NEWS2 at its response triggers; each alert names its source.

## Model
{_model_section(meta)}

## Data
{td['source']}. Split `{meta['split']['name']}` (stratified by outcome, seed {meta['split']['seed']}):
train {td['n_train']} ({td['n_train_positive']} deaths), validation {td['n_val']} ({td['n_val_positive']}),
held-out test {td['n_test']} ({td['n_test_positive']}); record ids in `splits.csv`. Outcomes are labels only.{_extra(td)}

## {_validation_title(meta)}
{_table(meta['validation'])}

## Held-out test
{test_part}

{("## Why this is the default" + chr(10) + meta["selection"] + chr(10) + chr(10)) if meta.get("selection") else ""}NEWS2 is scored per observation set by the RCP 2017 chart at its clinical triggers 5 and 7 (a parameter not
measured in 12 h scores nothing). SAPS-I is the admission score from the outcomes file, threshold chosen on
validation.

## Limits
- One hospital system (MIMIC-II, Boston, 2001-2008); not validated on other populations or ward (non-ICU) patients.
- {"Tested on set A only" if td.get("extra") else "Trained and tested on set A only"}; set B of the challenge is held back for an independent test.
- NEWS2 uses ICU stand-ins: SaO2 for SpO2, GCS < 15 for "not alert", FiO2 / ventilation for oxygen.
- Calibration is per hour on {"the out-of-fold predictions of " + str(td['n_train'] + td['n_val']) if meta.get('validation_kind') else "800 validation"} stays and has not been checked on other sites.
- In ICU stays NEWS2 is high almost everywhere (ventilation scores as oxygen, sedation as "not alert"): at 5 it
  alerts most survivors too, so its burden here says little about a general ward.
- More labelled stays would lift it, where every method lever measured (README) stayed within noise: on this
  recipe's learning curve (5-fold out of fold over the same 3,200 stays, fitting stays cut to 640 ... 2,560;
  `benchmarks/vitals_learning_curve.py`) 48 h event-1 rose from 0.41-0.47 to 0.49 and gains about 0.02 per
  doubling of the stays.
- Before relying on it in a unit, score that unit's own labelled stays at this threshold: the evaluation
  report's "Your own labelled stays", or `cxr-model vitals evaluate --records DIR --outcomes FILE --out DIR`
  (both count and flag stays this model was trained or tuned on).
"""
