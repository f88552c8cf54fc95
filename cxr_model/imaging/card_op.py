"""MODEL_CARD.md of a bundle with a population-aware operating point (model 2.1 on), from its metadata."""
from __future__ import annotations

from cxr_model.imaging.card import card_head, data_lines, metric_lines, mixed_training_lines, movement_lines
from cxr_model.metrics.format import fmt_metric as _fmt


def _short_table(rows: dict) -> list[str]:
    return ["| check | n | AUROC | sensitivity | specificity | accuracy |", "| --- | --- | --- | --- | --- | --- |",
            *[f"| {k} | {v['n']} | {_fmt(v['auroc'])} | {_fmt(v['sensitivity'])} | {_fmt(v['specificity'])} | "
              f"{_fmt(v['accuracy'])} |" for k, v in rows.items()]]


def _layout_rows(lay: dict | None) -> list[str]:
    """Rows of the OOD table for the image check (``ood.json`` ``"layout"``), then its rule; none without it."""
    if not lay:
        return []
    kinds = lay.get("non_radiographs", {}).get("by_kind", {})
    return [*[f"| image check (blank image / not a frontal chest view): validation {p} | {v['n']} | "
              f"{_fmt(v['flagged_fraction'])} |" for p, v in lay["val_by_population"].items()],
            *([f"| image check alone: generated {', '.join(kinds)} | {sum(v['n'] for v in kinds.values())} | "
               f"{_fmt(sum(v['withheld'] for v in kinds.values()) / sum(v['n'] for v in kinds.values()))} |"]
              if kinds else []),
            "",
            f"Image check (no network): {lay['method']}; fitted on n = {lay['n_train']} training films. Layout threshold "
            f"{lay['threshold']:.2f}: {lay['threshold_rule']}. Blank image below a neighbour correlation of "
            f"{lay['structure_min']:.3f}: {lay['structure_rule']}. A film is out of scope when either check names a "
            "reason or the feature distance is above its threshold; the reason is shown with the distance."]


def branch_lines(spec: dict | None) -> list[str]:
    """The adult branch's section (:mod:`~cxr_model.imaging.branch`); nothing for a bundle without one."""
    if not spec:
        return []
    tr, op = spec["training"], spec["operating_point"]["per_population"]["adult"]
    routed = spec.get("routed", {})
    before = spec.get("metrics_without_branch", {})
    return [
        "## Adults: the 448 px branch",
        f"A film the operating point treats as adult (DICOM PatientAge of 18 years or more, else the image's estimate) "
        f"is read again at {spec['img_size']} px; the same backbone ({tr['base']}, unchanged) gives its "
        f"{spec['cells']} x {spec['cells']} `{spec['layer']}` map, a linear head scores each cell, and the film's "
        + ("logit is the mean of the cells (so the class activation map is exactly the cell-logit map). " if not tr.get("prior") else
           "logit is the mean of the cells' contributions: each cell's logit times a spatial prior (mean 1) of where the "
           f"radiologists' boxes lie on the training films, smoothed by {tr['prior']['sigma_cells']:g} cell(s), at least "
           f"{tr['prior']['floor']:g} x its peak so no cell is ignored. HiResCAM on `{spec['layer']}` is that contribution "
           "map (plus the prior times a constant); Grad-CAM shows the cells' logits without the prior. ")
        + "Children keep the 224 px network.",
        f"- Head trained on {tr['films']} adult training films ({tr['pneumonia']} pneumonia, {tr['boxed']} with RSNA "
        f"opacity boxes): class-balanced BCE of the film logit + {tr['box_weight']} x cell-wise BCE against the boxes "
        f"(boxed films), {tr['epochs']} epochs, {tr['optimiser']}; {tr['wall_time_s']:.0f} s. `{tr['command']}`",
        f"- Its operating point (validation adults, the same rule as above): a = {op['a']:.3f}, centre logit "
        f"{op['centre_logit']:.3f}.",
        "- The 224 px network's adult map above applies to no film the branch scores. The tables of declared and "
        "unknown population, cross-source and shifted test films were measured on the 224 px network (the base "
        "bundle) and not again with the branch; the performance table above was.",
        "- Films scored by the branch: " + "; ".join(f"{k} {v['scored_by_branch']} of {v['n']}" for k, v in routed.items()) + ".",
        *cv_lines(spec.get("cross_validation")),
        "",
        "Before the branch (the base bundle's figures, same films):",
        "", *_short_table({k: v for k, v in before.items() if k.startswith("adult")}), "",
        *(["Movement of the branch's Youden point under the selection shifts (validation, centred scale):", "",
           *movement_lines(spec["operating_point"]["movement"]), ""] if spec["operating_point"].get("movement") else []),
    ]


def cv_lines(cv: dict | None) -> list[str]:
    """The branch recipe's cross-validated figures (``cxr-model adult-branch cv --write``), if measured."""
    if not cv:
        return []
    lo, hi = cv["auroc_ci95"]
    line = (f"- Cross-validated recipe ({cv['folds']} folds by patient over the {cv['films']} adult training and validation "
            f"films: {cv['pneumonia']} pneumonia, {cv['patients']} patients; test patients not read; each fold's head refitted "
            f"by the recipe above scores the films it did not see): out-of-fold AUROC {cv['auroc']:.3f} [{lo:.3f}, {hi:.3f}]")
    pt = cv.get("pointing")
    if pt:
        line += (f"; the shown map ({cv['map']['method']} on `{cv['map']['layer']}`) peaks inside a radiologist's box on "
                 f"{pt['hits']} of {pt['n']} held-out boxed films ({pt['pointing']:.2f} [{pt['pointing_ci95'][0]:.2f}, "
                 f"{pt['pointing_ci95'][1]:.2f}]; chance {pt['chance']:.2f}), energy share in the boxes {pt['energy']:.2f}")
    pl = cv.get("platt")
    if pl:
        line += (f"; a class-balanced Platt fit on the out-of-fold logits gives slope {pl['a_out_of_fold']:.2f} against the "
                 f"bundled {pl['a_bundled']:.2f} (fitted on the validation films only), so expect a calibration slope of "
                 f"about {pl['expected_slope']:.2f} for the adults' P on new films of this source")
    return [line + f". These estimate the recipe, not the bundled head. `{cv.get('command', '')}`"]


def head_lines(refit: dict | None) -> list[str]:
    """The head refit's section (:mod:`~cxr_model.imaging.head_fit`); nothing for a bundle without one."""
    if not refit:
        return []
    seen = refit["seen_as"]
    crop = "normal_logit_rise_crop" in refit["choice"][0]  # measured since 2.5.0
    bright = "normal_logit_rise_bright" in refit["choice"][0]  # measured since 2.6.0

    def cells(r):
        out = [_fmt(r["child_val_auroc"]), _fmt(r["child_val_matched_auroc"]), _fmt(r["child_val_reversed_auroc"]),
               f"{r['normal_logit_rise_blur_1_2']:+.2f}"]
        if crop:
            out += [_fmt(r["child_val_crop_auroc"]), f"{r['normal_logit_rise_crop']:+.2f}"]
        if bright:
            out += [_fmt(r["child_val_bright_auroc"]), f"{r['normal_logit_rise_bright']:+.2f}", _fmt(r["worst_shift_specificity"])]
        return out + [_fmt(r["adult_val_auroc_224"])]

    head = ["child val AUROC", "sharpness-matched", "shortcut reversed (crisp pneumonia, blurred normals)",
            "normal logit rise, blur 1.2", *(["child val AUROC, cropped 75-90 %", "normal logit rise, cropped"] if crop else []),
            *(["child val AUROC, over-exposed +15-45 %", "normal logit rise, over-exposed",
               "normals' specificity, worst shift (clean Youden threshold)"] if bright else []),
            "adult val AUROC (224 px)"]
    return [
        "## The 224 px head: refitted against the sharpness shortcut",
        f"On these films sharpness goes with the label: the mean absolute second difference of the 224 px source alone "
        f"ranks the children's validation films with AUROC {refit['sharpness_only_child_val_auroc']:.3f} (blurrier = "
        f"pneumonia). The head of {refit['base']} was refitted on its unchanged backbone (so the OOD check, the "
        "population estimate and the adults' branch read the same features): a class-balanced L2 logistic regression "
        f"on the pooled features of the {refit['n_train']} training films, normal films seen as {', '.join(seen['normal'])}, "
        f"pneumonia films as {', '.join(seen['pneumonia'])}"
        + "".join(f"; {v} at weight {w:g} per film" for v, w in refit.get("weights", {}).items())
        + f". C = {refit['C']:g}: {refit['rule']}. The sharpness-matched AUROC counts only pairs of films in the same "
        f"sharpness quintile. `cxr-model head fit`, {refit['wall_time_s']:.0f} s; the operating point above "
        "was then fitted on the new logits.",
        "",
        "| head | C | " + " | ".join(head) + " |",
        "| --- | --- | " + " | ".join("---" for _ in head) + " |",
        *[f"| {'base' if r['C'] is None else 'refit'} | {'-' if r['C'] is None else format(r['C'], 'g')} | "
          + " | ".join(cells(r)) + " |" for r in refit["choice"]],
        "",
    ]


def render_op_card(meta: dict, ood: dict | None = None) -> str:
    """The card; ``meta["card_notes"]`` (Markdown lines: measurements made outside the fit) go in as written."""
    tr, thr, op = meta["training"], meta["threshold"], meta["operating_point"]
    mv = thr["per_population_youden"]
    pm = meta["population_model"]
    lines = [
        *card_head(meta, "Films the OOD check flags get no call."),
        f"- Operating threshold: **{thr['value']:.3f}** for every film. {thr['rule']}",
        "- Maps (logit -> P): " + "; ".join(f"{p}: a = {m['a']:.3f}, centre logit {m['centre_logit']:.3f}"
                                             for p, m in op["per_population"].items())
        + f"; pooled fallback: a = {op['pooled']['a']:.3f}, centre logit {op['pooled']['centre_logit']:.3f}.",
        "- P reads as the probability of pneumonia at a 50 % prior within the film's population (each "
        "population's prevalence differs: Kermany children about 74 %, NIH adults about 37 %).",
        "",
        "### Population estimate (when no age is given)",
        f"{pm['method']}. Correct / uncertain (pooled map used) out of n:",
        "",
        "| part | n | correct | uncertain |", "| --- | --- | --- | --- |",
        *[f"| {k} | {v['n']} | {v['correct']} | {v['uncertain']} |" for k, v in pm["accuracy"].items()],
        "",
        *data_lines(tr),
        "",
        "## Performance at the bundled threshold, default path (population estimated from the image)",
        "AUROC with a seeded bootstrap 95 % CI (2,000 resamples). ECE and calibration slope of P against the "
        "labels at the split's own prevalence (P is an equal-prior probability, so ECE is not small where the "
        "prevalence is far from 50 %).",
        "",
        *metric_lines(meta["metrics"]),
        "",
        "### Population declared (e.g. DICOM PatientAge) instead of estimated",
        "", *_short_table(meta.get("metrics_population_declared", {})), "",
        "### Population unknown (pooled map for every film)",
        "", *_short_table(meta.get("metrics_population_unknown", {})), "",
        "### Cross-source: one population's map on the other's test films",
        "", *_short_table(meta.get("cross_source", {})), "",
        "### How the operating point moves under simulated shifts (validation)",
        "Each cell: the Youden point of that condition alone, on the population's centred scale "
        "(0.5 = the bundled point).",
        "",
        *movement_lines(mv),
        "",
        "### Test films under simulated acquisition shifts (bundled threshold)",
        "",
        *[line for pop, rows in meta.get("robustness", {}).items() for line in (f"**{pop}**", "", *_short_table(rows), "")],
    ]
    lines += head_lines(meta.get("head_refit"))
    lines += branch_lines(meta.get("adult_branch"))
    if ood:
        ev = ood["evaluation"]
        lines += [
            "## Out-of-scope check (OOD)",
            f"{ood['method']} ({ood['covariance']}); fitted on {ood['train_data']} (n = {ood['n_train']}). "
            f"Threshold {ood['threshold']:.2f}: {ood['threshold_rule']}.",
            "",
            "| set | n | flagged |", "| --- | --- | --- |",
            *[f"| validation {p} | {v['n']} | {_fmt(v['flagged_fraction'])} |" for p, v in ev.get("val_by_population", {}).items()],
            *[f"| non-radiographs: {k} | {v['n']} | {_fmt(v['flagged_fraction'])} |" for k, v in ev["by_kind"].items()],
            f"| real DICOMs (RSNA/NIH adults) | {len(ood.get('real_dicoms', []))} | "
            f"{sum(bool(r.get('flagged')) for r in ood.get('real_dicoms', []))} flagged |",
            *_layout_rows(ood.get("layout")),
            "",
        ]
    lines += [
        *meta.get("card_notes", []),
        "## Training",
        *mixed_training_lines(tr, "a fixed number of films per population, half of each class (adults with "
                                  "replacement, RSNA-confirmed adult labels drawn more often by `confirmed_weight`)"),
        "- Validation and test parts come from the training sites; figures are optimistic for other sites. The "
        "population estimate has only ever seen these two sources: an adult from a paediatric-looking site, or a "
        "teenager, may get the other population's map; give the age where it is known.",
        *(meta.get("card_limits") or ["- Grad-CAM localisation is measured separately (`cxr-model pointing`), not in this card."]),
        "",
    ]
    return "\n".join(lines)
