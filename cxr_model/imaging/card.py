"""MODEL_CARD.md for a chest X-ray bundle, written from its metadata (one source of truth)."""
from __future__ import annotations

import json
from pathlib import Path


def _fmt(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


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


def write_card(bundle_dir: str | Path) -> Path:
    bundle_dir = Path(bundle_dir)
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    path = bundle_dir / "MODEL_CARD.md"
    path.write_text(render_card(meta))
    return path
