"""Per-study report: one self-contained HTML file (images embedded as base64 PNG).

It carries the image, the CAM overlay, the probability and threshold, the OOD check, a model card
summary and the reviewer's decision, and nothing from the DICOM header (no PHI): the study is
named by its SHA-256 only, not by its file name, which often carries a patient ID (the RSNA files
are named by theirs). When the DICOM declares burned-in annotation (text in the pixels that may
name the patient, ``Study.burned_in``), the images are left out and the report says why.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape

import numpy as np

from cxr_model.imaging.explain import Faithfulness
from cxr_model.imaging.report.gallery import data_uri, png_bytes
from cxr_model.imaging.review import Study
from cxr_model.imaging.site import site_line


def _img(image: np.ndarray, alt: str) -> str:
    return f'<figure><img alt="{escape(alt)}" src="{data_uri(png_bytes(image))}"><figcaption>{escape(alt)}</figcaption></figure>'


def _num(v) -> str:
    return "n/a" if v is None or v != v else f"{float(v):.3f}"


def render_study_report(study: Study, image: np.ndarray, overlay_rgb: np.ndarray, meta: dict,
                        faith: Faithfulness | None = None, decision: dict | None = None) -> str:
    """The report as an HTML string.

    Args:
        study: the analysed study (no error).
        image: the radiograph as shown (grey ``(H, W)``: float in [0, 1] or ``uint8``).
        overlay_rgb: the CAM overlay as shown, ``uint8 (H, W, 3)``.
        meta: the model bundle's metadata (for the model card summary).
        faith: the CAM's faithfulness, if computed.
        decision: the latest saved decision row (``review_store`` columns), if any.
    """
    e = escape
    metrics = meta.get("metrics") or {}
    test = metrics.get("test") or next(iter(metrics.values()), {})
    perf = (f"AUROC {_num(test.get('auroc'))}, sensitivity {_num(test.get('sensitivity'))}, specificity "
            f"{_num(test.get('specificity'))} at the threshold on its held-out test split (n = {test.get('n', '?')})"
            if test else "no held-out metrics recorded")
    if study.ood_flag and study.scope_reason and study.ood_score is None:
        ood = f"<strong>Out of scope</strong>: {e(study.scope_reason)}."
    elif study.ood_score is None:
        ood = "OOD check not available for this model."
    elif study.ood_flag:
        ood = (f"<strong>Out of scope: {e(study.scope_reason or 'unlike the training radiographs')}</strong> (OOD "
               f"distance {study.ood_score:.1f}, threshold {study.ood_threshold:.1f}): the prediction is unreliable "
               "for this image.")
    else:
        ood = f"Within the training distribution (distance {study.ood_score:.1f} &le; threshold {study.ood_threshold:.1f})."
    if decision:
        dec = (f"<strong>{e(str(decision['decision']))}</strong> by {e(str(decision['reviewer']))} at "
               f"{e(str(decision['created_at']))} (CAM: {e(str(decision['cam_method']))})"
               + (f"<br>Note: {e(str(decision['note']))}" if decision.get("note") else ""))
    else:
        dec = "No reviewer decision saved yet."
    faith_html = (f"ROAD faithfulness {_num(faith.score)}: {e(faith.meaning)}" if faith else "not computed")
    if study.burned_in:
        images = ("<p>The images are left out of this report: the DICOM declares burned-in annotation "
                  "(BurnedInAnnotation = YES), text in the pixels that may identify the patient.</p>")
    else:
        images = _img(image, "Radiograph") + _img(overlay_rgb, f"{study.method} overlay (pneumonia logit)")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Study report {e(study.sha256[:12])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}}
figure{{display:inline-block;margin:0 1rem 1rem 0}} img{{max-width:27rem;border:1px solid #ccc}}
table{{border-collapse:collapse}} td,th{{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:left}}
.note{{background:#fff4e5;padding:.5rem 1rem;border-left:4px solid #f0a030}}</style></head><body>
<h1>Chest X-ray study report</h1>
<p class="note"><strong>Decision support, not a diagnosis.</strong> The probability and map are for a
clinician to weigh with the image and the patient.</p>
<table>
<tr><th>Study (file SHA-256)</th><td><code>{e(study.sha256)}</code></td></tr>
<tr><th>P(pneumonia)</th><td><strong>{study.probability:.3f}</strong></td></tr>
<tr><th>Threshold</th><td>{study.threshold:.3f} &rarr; <strong>{e(str(study.label))}</strong></td></tr>
<tr><th>Out-of-distribution check</th><td>{ood}</td></tr>
<tr><th>Population (operating point)</th><td>{e(str(study.population or 'n/a'))} ({e(str(study.population_source or 'n/a'))})</td></tr>
<tr><th>Site profile</th><td>{e(site_line(meta))}</td></tr>
<tr><th>CAM</th><td>{e(str(study.method))}; {faith_html}</td></tr>
<tr><th>Reviewer decision</th><td>{dec}</td></tr>
</table>
<h2>Images</h2>
{images}
<h2>Model card summary</h2>
<table>
<tr><th>Model</th><td>{e(str(meta.get('name')))} {e(str(meta.get('version')))} ({e(str(meta.get('architecture')))})</td></tr>
<tr><th>Intended use</th><td>Frontal chest radiographs of young children (1-5 years), possible pneumonia; not for adults,
lateral views or other findings.</td></tr>
<tr><th>Training data</th><td>{e(str((meta.get('training') or {}).get('data', '')))}</td></tr>
<tr><th>Threshold rule</th><td>{e(str((meta.get('threshold') or {}).get('rule', '')))}</td></tr>
<tr><th>Performance</th><td>{e(perf)}</td></tr>
</table>
<p><small>Generated {datetime.now(timezone.utc).isoformat(timespec="seconds")} by the clinician AI dashboard.</small></p>
</body></html>
"""
