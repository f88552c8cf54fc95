"""Evaluation run folders and their self-contained ``report.html``.

A run folder is what ``cxr-model evaluate --out DIR`` (``imaging.evaluate.run_evaluation``)
writes: ``metrics.json``, ``predictions.csv`` (path, label, probability, predicted, extra columns
such as subtype, width, height) and ``errors.csv`` (path, error). :func:`load_run` reads one;
:func:`write_report` turns one into ``report.html``, the same for the CLI and the page.

The report carries everything inline (plotly.js, figures, base64 PNG thumbnails), so it opens
from a file, an e-mail or an air-gapped ward PC without any network access.
"""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from cxr_model.files import write_text
from cxr_model.imaging.labels import CLASSES
from cxr_model.imaging.report import figures as F
from cxr_model.imaging.report.analysis import (Analysis, data_summary, mixed_population_note, subgroup_label,
                                               training_summary)
from cxr_model.imaging.report.header import scope_lines
from cxr_model.imaging.report.gallery import GalleryItem, build_gallery, data_uri, failure_cases
from cxr_model.imaging.report.run import EvalRun, analyse_run, load_run
from cxr_model.imaging.runfolder import REPORT
from cxr_model.metrics.format import fmt, vitals_groups

DISCLAIMER = "Decision support, not a diagnosis."
MAX_ERROR_ROWS = 200
FIG_PX = 550
PAIRED = {"roc-curve", "pr-curve", "confusion-matrix", "probability-histogram"}


def build_figures(run: EvalRun, a: Analysis) -> dict:
    """The report's plotly figures, keyed by the div id they get in report.html."""
    op = a.operating_point()
    sub = f"{a.split}, n = {a.n}"
    auroc, auprc = a.row("auroc"), a.row("auprc")
    y, p = run.predictions["label"].to_numpy(), run.predictions["probability"].to_numpy()
    return {
        "roc-curve": F.roc_figure(a.roc, op["fpr"], op["tpr"], a.threshold, auroc["value"], auroc["ci95"], sub),
        "pr-curve": F.pr_figure(a.pr, op["recall"], op["precision"], a.threshold, auprc["value"], a.prevalence,
                                auprc["ci95"], sub),
        "confusion-matrix": F.confusion_figure(a.confusion, a.threshold),
        "probability-histogram": F.probability_figure(y, p, a.threshold),
        "reliability-diagram": F.reliability_figure(a.reliability, a.row("ece")["value"], a.calibration, sub),
    }


def _table(headers: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def metrics_table(a: Analysis) -> str:
    rows = [[r["metric"], r["value"], r["ci95"] if r["ci95"] else "", r["ci_method"], r["n"], r["n_of"], r["split"]]
            for r in a.rows]
    return _table(["Metric", "Value", "95% CI", "CI method", "n", "n counts", "Split"], rows, "metrics")


def subgroup_html(a: Analysis) -> str:
    if not a.subgroups:
        return "<p>No categorical column in predictions.csv to form subgroups.</p>"
    parts = []
    for col, rows in a.subgroups.items():
        body = [[r["group"], r["n"], r["n_positive"], r["n_negative"], r["mean_probability"], r["auroc"],
                 r["auroc_ci95"], r["sensitivity"], r["sensitivity_ci95"], r["specificity"], r["specificity_ci95"],
                 r["accuracy"], r["accuracy_ci95"]] for r in rows]
        parts.append(f"<h3>By {html.escape(subgroup_label(col))} (<code>{html.escape(col)}</code>; {html.escape(a.split)}, threshold {a.threshold:.3f})</h3>"
                     + _table(["Group", "n", "pneumonia", "normal", "mean P", "AUROC", "95% CI", "Sensitivity",
                               "95% CI", "Specificity", "95% CI", "Accuracy", "95% CI"], body, "subgroups"))
    parts.append("<p class='note'>n/a: not defined in a group holding one class only (e.g. specificity among "
                 "pneumonia cases). Small groups have wide intervals.</p>")
    return "".join(parts)


def data_html(summary: dict, training: dict, split: str) -> str:
    this = [["images scored", summary["n"]], ["unreadable (see errors)", summary["n_errors"]]]
    this += [[f"class {k}", v] for k, v in summary["classes"].items()]
    this += [[f"subtype {k}", v] for k, v in summary.get("subtypes", {}).items()]
    sizes = summary.get("sizes")
    if sizes:
        this += [["distinct image sizes", sizes["distinct"]],
                 ["width min / median / max (px)", " / ".join(fmt(v, 0) for v in sizes["width_min_median_max"])],
                 ["height min / median / max (px)", " / ".join(fmt(v, 0) for v in sizes["height_min_median_max"])]]
        this += [[f"size {k}", v] for k, v in sizes["most_common"].items()]
    left = f"<div><h3>This set: {html.escape(split)}</h3>{_table(['', 'count'], this)}</div>"
    if not training:
        return f"<div class='grid'>{left}<div><h3>Training data</h3><p>No model card given.</p></div></div>"
    counts = [[k, c.get("n"), c.get("pneumonia"), c.get("normal")] for k, c in training["counts"].items()]
    right = (f"<div><h3>Training data of {html.escape(training['model'])}</h3>"
             f"<p>{html.escape(training['data'])}<br>{html.escape(training['split'])}</p>"
             f"{_table(['split', 'n', 'pneumonia', 'normal'], counts)}"
             f"<p class='note'>Input: {html.escape(training['input'])}</p></div>")
    return f"<div class='grid'>{left}{right}</div>"


def gallery_html(items: list[GalleryItem]) -> str:
    if not items:
        return "<p>No false negatives or false positives at this threshold.</p>"
    cards = []
    for g in items:
        imgs = "".join(f"<img src='{data_uri(b)}' alt='{alt}'>" for b, alt in
                       ((g.image_png, "radiograph"), (g.cam_png, "Grad-CAM overlay")) if b)
        cards.append(f"<figure class='card {g.kind.replace(' ', '-')}'>{imgs}<figcaption><b>{g.kind}</b>: "
                     f"P(pneumonia) {g.probability:.3f}, truly {CLASSES[g.label]}<br>"
                     f"<code>{html.escape(g.path)}</code>"
                     f"{'<br><i>' + html.escape(g.note) + '</i>' if g.note else ''}</figcaption></figure>")
    return f"<div class='gallery'>{''.join(cards)}</div>"


def errors_html(errors: pd.DataFrame) -> str:
    if errors.empty:
        return "<p>Every file was readable and scored.</p>"
    shown = errors.head(MAX_ERROR_ROWS)
    more = f"<p class='note'>First {MAX_ERROR_ROWS} of {len(errors)} shown; all are in errors.csv.</p>" if len(
        errors) > MAX_ERROR_ROWS else ""
    return _table(["File", "Problem"], shown[["path", "error"]].values.tolist(), "errors") + more


def vitals_html(vitals: dict) -> str:
    rows = vitals_groups(vitals)
    if not rows:
        return "<p>The vitals metrics hold no group with an AUROC.</p>"
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k != "group"]
    head = f"<p>n = {fmt(vitals.get('n'))}, unreadable records = {fmt(vitals.get('n_errors'))}</p>" if "n" in vitals else ""
    return head + _table(["Model / window", *keys], [[r["group"], *[r.get(k) for k in keys]] for r in rows], "vitals")


def scope_html(run: EvalRun, bundle_meta: dict | None) -> str:
    """Intended use, OOD rate and overlap verdict (:func:`~cxr_model.imaging.report.header.scope_lines`)."""
    return "".join(f"<p class='{'banner warn' if level == 'warning' else 'scope'}' id='scope-{i}'>{html.escape(text)}</p>"
                   for i, (level, text) in enumerate(scope_lines(run.metrics, bundle_meta)))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;color:#222}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.banner{background:#fff4e5;border-left:5px solid #f0a020;padding:.6rem 1rem;font-weight:600}
.warn{background:#fdecea;border-left-color:#d62728} .scope{border-left:5px solid #9ab;padding:.3rem 1rem;margin:.3rem 0}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
th{background:#f4f6f8} td{white-space:nowrap} .errors td,.metrics td{white-space:normal} .metrics td:nth-child(3){white-space:nowrap} .note{color:#666;font-size:.85rem}
.grid{display:flex;flex-wrap:wrap;gap:1rem} .grid>div{flex:1 1 420px;min-width:0} .grid>.fig{flex:0 0 auto}
.gallery{display:flex;flex-wrap:wrap;gap:.8rem} .card{margin:0;border:1px solid #ddd;padding:.4rem;max-width:400px}
.card img{margin-right:4px} .false-negative{border-top:4px solid #d62728} .false-positive{border-top:4px solid #1f77b4}
figcaption{font-size:.8rem;word-break:break-all}
@media print{.fig,figure,tr,.banner{break-inside:avoid} h2,h3{break-after:avoid} body{max-width:none}}
"""


def render_html(run: EvalRun, a: Analysis, bundle_meta: dict | None = None, gallery: list[GalleryItem] | None = None,
                vitals: dict | None = None) -> str:
    """The whole report as one HTML string with plotly.js inline (no external resources)."""
    from plotly.offline import get_plotlyjs

    figs = {}
    for k, f in build_figures(run, a).items():
        # Side-by-side figures get a fixed width: plotly sizes an unsized figure to its container
        # while the page is still being parsed, before the grid has a width, and would overflow.
        f.update_layout(width=FIG_PX if k in PAIRED else None)
        figs[k] = f"<div class='fig'>{f.to_html(full_html=False, include_plotlyjs=False, div_id=k, config={'displaylogo': False})}</div>"
    model = run.metrics.get("model") or (training_summary(bundle_meta) or {}).get("model", "unknown model")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cal = a.calibration
    esc = html.escape
    sections = [
        f"<h1>Evaluation report: {esc(str(model))}</h1>",
        f"<p class='banner'>{DISCLAIMER} This report describes how the model performed on one labelled set; "
        f"it does not replace a clinician's reading of the images.</p>",
        scope_html(run, bundle_meta),
        *[f"<p class='banner warn' id='mixed-populations'>{esc(t)}</p>"
          for t in [mixed_population_note(data_summary(run.predictions))] if t],
        f"<p>Set: <b>{esc(a.split)}</b> (n = {a.n} scored, {len(run.errors)} unreadable) · data: "
        f"<code>{esc(str(run.metrics.get('data', '')))}</code> · run folder: <code>{esc(str(run.run_dir))}</code> · "
        f"operating threshold {a.threshold:.4f} (P(pneumonia) &ge; threshold is called pneumonia) · generated {now}</p>",
        "<h2>Data</h2>", data_html(data_summary(run.predictions, len(run.errors)), training_summary(bundle_meta), a.split),
        f"<h2>Metrics ({esc(a.split)}, n = {a.n})</h2>", metrics_table(a),
        "<p class='note'>Proportions (sensitivity, specificity, PPV, NPV, accuracy) carry Wilson score intervals; "
        "AUROC, AUPRC, ECE, Brier and F1 carry seeded percentile bootstrap intervals over cases.</p>",
        "<h2>Discrimination</h2>", f"<div class='grid'>{figs['roc-curve']}{figs['pr-curve']}</div>",
        f"<div class='grid'>{figs['confusion-matrix']}{figs['probability-histogram']}</div>",
        "<h2>Calibration</h2>", figs["reliability-diagram"],
        f"<p>ECE {fmt(a.row('ece')['value'])} · calibration slope {fmt(cal['slope'], 2)} · intercept "
        f"{fmt(cal['intercept'], 2)} · calibration-in-the-large {fmt(cal['citl'], 2)} (n = {a.n}, {esc(a.split)}). "
        "Slope below 1: predictions too extreme; above 1: too timid. n/a: not estimable (one class, or "
        "complete separation).</p>",
        _table(["Bin", "n", "mean predicted", "observed"],
               [[r["bin"], r["n"], r["mean_predicted"], r["observed"]] for r in a.reliability.rows()]),
        "<h2>Subgroups</h2>", subgroup_html(a),
        f"<h2>Failure gallery (threshold {a.threshold:.3f})</h2>",
        "<p class='note'>The most confident mistakes: false negatives with the lowest probability, false positives "
        "with the highest. Grad-CAM shows where the network looked, not why it was wrong.</p>",
        gallery_html(gallery or []),
        "<h2>Unreadable files</h2>", errors_html(run.errors),
    ]
    if vitals:
        sections += ["<h2>Ward vitals model</h2>", vitals_html(vitals)]
    sections.append(f"<hr><p class='note'>{DISCLAIMER} Generated by cxr_model.imaging.report.html.</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Evaluation report: {esc(str(model))} on {esc(a.split)}</title><style>{_CSS}</style>"
            f"<script>{get_plotlyjs()}</script></head><body>{''.join(sections)}</body></html>")


def report_html(run: EvalRun, bundle_meta: dict | None = None, *, bundle=None,
                vitals_metrics: dict | str | Path | None = None, threshold: float | None = None,
                n_resamples: int = 2000, seed: int = 0, gallery_k: int = 6,
                allowed_roots: list[Path] | None = None, analysis: Analysis | None = None) -> str:
    """The report of a loaded run as an HTML string (see :func:`write_report` for the arguments).

    ``allowed_roots``: the gallery reads images inside these folders only (the dashboard passes
    the data folder and the run folder; see ``gallery.resolve_image``).
    ``analysis``: the run's analysis when the caller already has it (``finalize_run``), so the
    metrics are computed once per run.
    """
    if bundle_meta is None and bundle is not None:
        bundle_meta = bundle.meta
    a = analysis or analyse_run(run, threshold, bundle_meta, n_resamples=n_resamples, seed=seed)
    gallery = build_gallery(failure_cases(run.predictions, a.threshold, gallery_k), run.image_roots(), bundle=bundle,
                            allowed=allowed_roots)
    if isinstance(vitals_metrics, (str, Path)):
        vitals_metrics = json.loads(Path(vitals_metrics).read_text())
    return render_html(run, a, bundle_meta, gallery, vitals_metrics)


def write_report(run_dir: str | Path, bundle_meta: dict | None = None, *, bundle=None,
                 vitals_metrics: dict | str | Path | None = None, threshold: float | None = None,
                 n_resamples: int = 2000, seed: int = 0, gallery_k: int = 6) -> Path:
    """Write ``run_dir/report.html`` from the run folder's files.

    Args:
        run_dir: a folder holding predictions.csv (and metrics.json, errors.csv).
        bundle_meta: the model's metadata.json (training data, threshold rule) for the report.
        bundle: a loaded :class:`~cxr_model.registry.CxrBundle`; when given, the failure gallery
            carries Grad-CAM overlays.
        vitals_metrics: a vitals run's metrics.json (dict or path) for the vitals section.
        threshold: override the run's operating threshold.
        gallery_k: how many false negatives and how many false positives to show.

    Returns:
        The path of report.html.
    """
    run = load_run(run_dir)
    html_text = report_html(run, bundle_meta, bundle=bundle, vitals_metrics=vitals_metrics, threshold=threshold,
                            n_resamples=n_resamples, seed=seed, gallery_k=gallery_k)
    return write_text(run.run_dir / REPORT, html_text)  # a kill mid-write never leaves half a report
