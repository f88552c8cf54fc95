"""The lines on top of an evaluation report: intended use, files out of scope, overlap with training data.

Plain sentences, shared by ``report.html`` (and so the PDF) and the evaluation page, so both say
the same thing. Each line is ``(level, text)`` with level ``"info"`` or ``"warning"``.
"""
from __future__ import annotations

from cxr_model.imaging.overlap import overlap_label
from cxr_model.metrics.format import fmt

POPULATION_WORDS = {"child": "children", "adult": "adults"}


def intended_use(bundle_meta: dict | None) -> str:
    """One sentence: what the model is for, from its metadata (``intended_use``, else ``populations``)."""
    meta = bundle_meta or {}
    if meta.get("intended_use"):
        return f"Intended use: {meta['intended_use']}"
    pops = [POPULATION_WORDS.get(p, p) for p in meta.get("populations") or ["child"]]
    who = " and ".join(pops)
    return (f"Intended use: P(pneumonia) on frontal (PA/AP) chest radiographs of {who}, as decision support for a "
            "clinician reading the images. Not for lateral views, CT, MR, other findings or other populations; "
            "files unlike the training radiographs are flagged out of scope and get no call.")


def scope_lines(metrics: dict, bundle_meta: dict | None = None) -> list[tuple[str, str]]:
    """Intended use, the OOD rate with the in-scope metrics, and the overlap verdict of one run.

    Args:
        metrics: the run's ``metrics.json`` (:func:`cxr_model.imaging.scope.scope_metrics` keys).
        bundle_meta: the model's metadata, for the intended-use line.
    """
    lines = [("info", intended_use(bundle_meta))]
    if metrics.get("site_profile"):
        lines.append(("warning", f"{metrics.get('site') or 'Site profile ' + repr(metrics['site_profile'].get('name'))}. "
                                 "Scored with this site's profile, not the bundled model as is."))
    n = metrics.get("n")
    if metrics.get("n_out_of_scope") is None:
        why = metrics.get("ood_check") or "not recorded (run scored before this check existed)"
        lines.append(("warning", f"Out-of-scope (OOD) check: {why}. Files unlike the training radiographs are "
                                 "not flagged, and the metrics may include them."))
    else:
        ins = metrics.get("in_scope") or {}
        rate = metrics.get("ood_rate")
        text = (f"Out of scope (OOD): {metrics['n_out_of_scope']} of {n} scored files "
                f"({fmt(100 * rate, 1) if rate is not None else 'n/a'} %) are unlike the training radiographs "
                f"(distance above {fmt(metrics.get('ood_threshold'), 1)}). The metrics below are over every readable "
                f"file; over the {ins.get('n', 0)} in-scope files: AUROC {fmt(ins.get('auroc'))}, sensitivity "
                f"{fmt(ins.get('sensitivity'))}, specificity {fmt(ins.get('specificity'))}, accuracy "
                f"{fmt(ins.get('accuracy'))}.")
        lines.append(("warning" if metrics["n_out_of_scope"] else "info", text))
    overlap = metrics.get("overlap")
    verdict = overlap_label(overlap)
    seen = bool(overlap and overlap.get("checked") and not overlap.get("is_test"))
    if seen:
        ex = "; e.g. " + ", ".join(overlap.get("examples", [])[:3]) if overlap.get("examples") else ""
        verdict = (f"This set {verdict}. The model was trained or validated on some of these images (same sha256), "
                   f"so these figures are optimistic and are not a test result{ex}.")
    else:
        verdict = f"Set vs the model's own split: {verdict}."
    lines.append(("warning" if seen or not (overlap or {}).get("checked") else "info", verdict))
    return lines
