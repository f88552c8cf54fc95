"""MODEL_CARD.md for a chest X-ray bundle, written from its metadata (one source of truth)."""
from __future__ import annotations

import json

from cxr_model.metrics.format import fmt_metric as _fmt


def movement_lines(mv: dict) -> list[str]:
    """Table of the operating point per condition (rows) and population (columns): ``mv[pop][cond]``."""
    return ["| condition | " + " | ".join(mv) + " |", "| --- | " + " | ".join("---" for _ in mv) + " |",
            *[f"| {cond} | " + " | ".join(_fmt(mv[p][cond]) for p in mv) + " |" for cond in next(iter(mv.values()), {})]]



def mixed_training_lines(tr: dict, draws: str) -> list[str]:
    """A two-population run's training lines (config, draws and augmentation, best epoch) and the
    first limits every two-population card states; ``draws``: how each epoch draws its films."""
    return [
        f"- Config: `{json.dumps(tr['config'])}`",
        f"- Each epoch draws {draws}; unweighted loss. Augmentation: random resized crop (50-100 %), rotation "
        "+-10 deg, shift +-6 %, brightness/contrast/gamma jitter, blur, noise"
        + (", JPEG quality 30-95 and burned-in markers/text" if tr["config"].get("site_augment") else "") + ".",
        f"- Best epoch {tr['best_epoch']} of {len(tr['history'])} by {tr['selection']}; "
        f"wall time {tr['wall_time_s'] / 60:.1f} min on {tr['device']} ({tr.get('threads', '?')} threads, shared), {tr['date']}.",
        "",
        "## Limits",
        "- Adults: 538 training films of one hospital (NIH Clinical Center); the adult validation and test parts are "
        "small (about 115 films each), so their CIs are wide. NIH-only labels are text-mined and partly wrong.",
        "- Every film is squashed to 224 x 224 (the Kermany copies' form); the NIH 512 px detail is not used.",
    ]

def _row(name: str, m: dict) -> str:
    ci = m.get("auroc_ci95") or [float("nan")] * 2
    return (f"| {name} | {m['n']} ({m['n_positive']} / {m['n_negative']}) | {_fmt(m['auroc'])} "
            f"[{_fmt(ci[0])}, {_fmt(ci[1])}] | {_fmt(m['sensitivity'])} | {_fmt(m['specificity'])} | "
            f"{_fmt(m['accuracy'])} | {_fmt(m['ece'])} |")


def render_card(meta: dict) -> str:
    tr = meta["training"]
    counts = tr["counts"]
    lines = [
        f"# Model card: {meta['name']} {meta['version']}",
        "",
        "**Decision support, not a diagnosis.** The output is a probability for a clinician to weigh "
        "with the image and the patient; it is not a diagnosis and must not be acted on alone.",
        "",
        "## Intended use",
        "Flag frontal chest radiographs of young children (1-5 years) for possible pneumonia "
        "(bacterial or viral) during review, with a Grad-CAM map to check where the model looked. "
        "Not for adults, lateral views, CT, or any other finding; not validated prospectively.",
        "",
        "## Model",
        f"- Architecture: torchvision `{meta['architecture']}`, trained from scratch (no pretrained weights), "
        "1 grey input channel, one output logit.",
        f"- Input: {meta['input']['pipeline']}.",
        f"- Output: calibrated P(pneumonia) ({meta['calibration']['method']}: a = {meta['calibration']['a']:.3f}, "
        f"b = {meta['calibration']['b']:.3f}).",
        f"- Operating threshold: **{meta['threshold']['value']:.3f}**. Rule: {meta['threshold']['rule']}",
        "",
        "## Data",
        "Kermany et al., Cell 2018 (Guangzhou Women and Children's Medical Center), CC BY 4.0; the "
        "copies used here were resized to 224 x 224 by their uploaders without keeping the aspect ratio. "
        f"Official train split, divided {tr['split']}:",
        "",
        "| part | images | pneumonia | normal |",
        "| --- | --- | --- | --- |",
        *[f"| {k} | {v['n']} | {v['pneumonia']} | {v['normal']} |" for k, v in counts.items()],
        "",
        "## Performance",
        "Probability >= threshold is called pneumonia. AUROC with a seeded bootstrap 95 % CI (2,000 resamples).",
        "",
        "| split | n (pneumonia / normal) | AUROC [95 % CI] | sensitivity | specificity | accuracy | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[_row(v.get("split", k), v) for k, v in meta["metrics"].items()],
        "",
        "### Under simulated acquisition shifts (own held-out test split)",
        "",
        "| shift | AUROC | sensitivity | specificity | accuracy |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {k} | {_fmt(v['auroc'])} | {_fmt(v['sensitivity'])} | {_fmt(v['specificity'])} | {_fmt(v['accuracy'])} |"
          for k, v in meta.get("robustness", {}).get("test", {}).items()],
        "",
        "## Training",
        f"- Config: `{json.dumps(tr['config'])}`",
        "- Augmentation: random resized crop (50-100 % of the area), rotation +-10 deg, shift +-6 %, "
        "brightness/contrast/gamma jitter, blur, noise; class weighting (pos_weight = normal/pneumonia).",
        f"- Best epoch {tr['best_epoch']} by validation AUROC"
        f"{' (validation pooled with 4 acquisition shifts)' if tr['config'].get('select_on') == 'hard' else ''}; wall time {tr['wall_time_s'] / 60:.1f} min on {tr['device']} ({tr['date']}).",
        "",
        "## Limits",
        "- Paediatric films from one hospital: performance on adults or other sites is unknown and likely lower "
        "(the official Kermany test split alone already differs in exposure, contrast and cropping).",
        "- Trained on 224 px copies: fine detail is lost; full-size films are squashed to 224 x 224 to match.",
        "- Labels are image-level; no patient IDs exist in the set, so children were grouped by file-name stems.",
        "- Burned-in markers and text can attract the model's attention: check the Grad-CAM map. On the 5 adult "
        "RSNA films with pneumonia boxes the Grad-CAM peak fell inside a box 0 of 5 times (EigenCAM 1 of 5; chance "
        "about 11 %; `python benchmarks/pointing_game.py`): on adult films the maps peak at the lower and right "
        "edges, not on the opacities. Treat a map as a check on the model, not as a localisation.",
        "- The validation and test parts come from the same site as training; the figures above are "
        "optimistic for any other site.",
        "",
    ]
    return "\n".join(lines)


def card_head(meta: dict, scope: str) -> list[str]:
    """Title, the decision-support line, intended use (ending with ``scope``) and the model's first lines."""
    return [
        f"# Model card: {meta['name']} {meta['version']}",
        "",
        "**Decision support, not a diagnosis.** The output is a probability for a clinician to weigh "
        "with the image and the patient; it is not a diagnosis and must not be acted on alone.",
        "",
        "## Intended use",
        "Flag frontal (PA/AP) chest radiographs of children (Kermany, 1-5 years) and adults (NIH, 18-85 years) "
        "for possible pneumonia during review. Not for lateral views, CT, or any other finding; not validated "
        f"prospectively. {scope}",
        "",
        "## Model",
        f"- Architecture: torchvision `{meta['architecture']}`, 1 grey input channel, one output logit; "
        f"fine-tuned from `{meta['training'].get('init_from') or 'scratch'}` (no external pretrained weights).",
        f"- Input: {meta['input']['pipeline']}.",
    ]


def data_lines(tr: dict) -> list[str]:
    """The data section: sources, split rule and the per-population counts table."""
    return [
        "## Data",
        f"{tr['data']}. Split: {tr['split']}.",
        "",
        "| population | part | images | pneumonia | normal | children / patients |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {pop} | {k} | {v['n']} | {v['pneumonia']} | {v['normal']} | {v['groups']} |"
          for pop, parts in tr["counts"].items() for k, v in parts.items()],
    ]


def metric_lines(metrics: dict) -> list[str]:
    """The per-split metrics table, then the calibration slopes."""
    return [
        "| split | n (pneumonia / normal) | AUROC [95 % CI] | sensitivity | specificity | accuracy | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[_row(v.get("split", k), v) for k, v in metrics.items()],
        "",
        "| split | calibration slope |",
        "| --- | --- |",
        *[f"| {k} | {_fmt(v.get('calibration_slope'))} |" for k, v in metrics.items()],
    ]


def render_mixed_card(meta: dict) -> str:
    tr, thr = meta["training"], meta["threshold"]
    mv = thr.get("per_population_youden", {})
    cal = meta["calibration"]
    lines = [
        *card_head(meta, "One threshold serves both populations (no age input is needed)."),
        f"- Output: calibrated P(pneumonia) ({cal['method']}: a = {cal['a']:.3f}, b = {cal['b']:.3f}).",
        f"- Operating threshold: **{thr['value']:.3f}**. Rule: {thr['rule']}",
        "",
        *data_lines(tr),
        "",
        "## Performance (each population separately)",
        "Probability >= threshold is called pneumonia. AUROC with a seeded bootstrap 95 % CI (2,000 resamples). "
        "Calibration slope 1 is ideal.",
        "",
        *metric_lines(meta["metrics"]),
        "",
        "### Cross-source: one population's validation threshold on the other's test films",
        "",
        "| check | threshold | n | AUROC | sensitivity | specificity | accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {k} | {_fmt(v['threshold'])} | {v['n']} | {_fmt(v['auroc'])} | {_fmt(v['sensitivity'])} | "
          f"{_fmt(v['specificity'])} | {_fmt(v['accuracy'])} |" for k, v in meta.get("cross_source", {}).items()],
        "",
        "### How the threshold moves (Youden's J per population on validation, after calibration)",
        "",
        *movement_lines(mv),
        "",
        "### Adults' test films under simulated acquisition shifts",
        "",
        "| shift | n | AUROC | sensitivity | specificity | accuracy |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {k} | {v['n']} | {_fmt(v['auroc'])} | {_fmt(v['sensitivity'])} | {_fmt(v['specificity'])} | {_fmt(v['accuracy'])} |"
          for k, v in meta.get("robustness", {}).get("adult_test", {}).items()],
        "",
        "### Adults' test films by subgroup (small n: read as a sanity check)",
        "",
        "| subgroup | n | AUROC | sensitivity | specificity | accuracy |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {k} | {v['n']} | {_fmt(v['auroc'])} | {_fmt(v['sensitivity'])} | {_fmt(v['specificity'])} | {_fmt(v['accuracy'])} |"
          for k, v in meta.get("subgroups", {}).get("adult_test", {}).items()],
        "",
        "## Training",
        *mixed_training_lines(tr, "the same number of films from each population, half of each class (adults with "
                                  "replacement)"),
        "- The validation and test parts come from the training sites; figures are optimistic for other sites.",
        "- OOD statistics and Grad-CAM localisation were not refitted or measured for this version in this run.",
        "",
    ]
    return "\n".join(lines)
