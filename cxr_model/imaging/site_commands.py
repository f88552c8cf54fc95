"""``cxr-model site adapt | recalibrate | list``: make, tune and show named site profiles.

The profiles and what they hold are described in :mod:`cxr_model.imaging.site`. Every file goes
through the one preprocessing path (read -> source -> EvalTransform); a file that cannot be read
is named with its problem and left out, and the others carry on. Films outside what the model was
made for (a declared lateral view, or what the bundle's scope check flags: a blank image, not a
frontal chest view, an OOD distance above the threshold) are named with the reason and left out
too: they must not move the statistics of, or choose the threshold for, in-scope films.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch

from cxr_model.imaging import site as S
from cxr_model.imaging.adapt import MIN_FILMS, adapt_batchnorm, save_site_profile
from cxr_model.imaging.bundle import resolve_bundle
from cxr_model.imaging.data import scan_labelled
from cxr_model.imaging.dicom_context import header_context
from cxr_model.imaging.formats import ImageReadError, _as_bytes
from cxr_model.imaging.io import read_image
from cxr_model.imaging.ood import OodError, OodModel, batch_features, load_ood
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.transforms import SOURCE_SIZE, EvalTransform, source_size, to_source
from cxr_model.registry import BundleError, metadata_or_none
from cxr_model.settings import get_settings

#: Suffixes taken from a folder (a file named on the command line is always tried; no suffix: maybe a DICOM).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ""}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def image_files(args: list[str]) -> list[Path]:
    """Files named, and the image files inside folders named (recursively, sorted, hidden ones left out)."""
    out: list[Path] = []
    for a in args:
        p = Path(a)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(p)
    return out


def local_sources(files: list[Path], log=_err, size: int = SOURCE_SIZE) -> tuple[torch.Tensor, int, list[Path]]:
    """uint8 sources ``(N, 1, size, size)`` of the readable files not declared out of scope, how many
    were left out, and the N files kept (in order).

    Left out (each named in ``log``): unreadable files and films whose DICOM header says they are
    out of scope (a lateral view). The image check and the OOD distance are :func:`in_scope`'s.
    """
    srcs, kept, left = [], [], 0
    for f in files:
        try:
            data = _as_bytes(f, str(f))
            reason = header_context(data).scope_reason
            if reason:
                raise ImageReadError(str(f), f"left out: {reason}")
            srcs.append(to_source(read_image(data, str(f)), size))
            kept.append(f)
        except ImageReadError as exc:
            log(f"skipped {exc}")
            left += 1
    return (torch.stack(srcs) if srcs else torch.zeros(0, 1, size, size, dtype=torch.uint8)), left, kept


def in_scope(bundle, ood: OodModel | None, sources: torch.Tensor, files: list[Path], log=_err,
             batch_size: int = 64) -> torch.Tensor:
    """The rows of ``sources`` (one per file in ``files``) that the bundle's scope check keeps.

    The same rule as ``predict`` and the review page (:meth:`OodModel.verdicts` on the bundled
    network's features and the model inputs: blank image, not a frontal chest view, OOD distance
    above the threshold); each film left out is named in ``log`` with its reason. Without OOD
    statistics (``ood`` is ``None``) every row is kept.

    Returns:
        A bool mask ``(N,)``.
    """
    keep = torch.ones(len(sources), dtype=torch.bool)
    if ood is None or not len(sources):
        return keep
    tf = EvalTransform(bundle.img_size)
    for i in range(0, len(sources), batch_size):
        x = tf(sources[i:i + batch_size])
        for j, (dist, out, reason) in enumerate(ood.verdicts(batch_features(bundle, x), x)):
            if out:
                keep[i + j] = False
                log(f"skipped {files[i + j]}: left out: outside what the model was made for: {reason} "
                    f"(OOD distance {dist:.1f}, threshold {ood.threshold:.1f})")
    return keep


def adapt_command(name: str, inputs: list[str], model_dir: str | None = None, batch_size: int = 64) -> int:
    """Adapt the bundle's batch-norm statistics to the in-scope films in ``inputs`` and save profile ``name``.

    Refused (exit 2, nothing written) when fewer than :data:`~cxr_model.imaging.adapt.MIN_FILMS`
    in-scope films remain.
    """
    try:
        folder = S.site_folder()
        S.check_name(name)
        bundle = resolve_bundle(model_dir)
    except (ValueError, BundleError) as exc:
        _err(f"error: {exc}")
        return 2
    try:
        ood = load_ood(bundle)
    except OodError as exc:
        ood = None
        _err(f"note: out-of-distribution check unavailable ({exc}); only unreadable files and DICOM-declared "
             "laterals are left out")
    files = image_files(inputs)
    src, left, kept = local_sources(files, size=source_size(bundle.img_size))
    keep = in_scope(bundle, ood, src, kept, batch_size=batch_size)
    src, n_out = src[keep], int((~keep).sum())
    if len(src) < MIN_FILMS:
        _err(f"error: site adaptation needs at least {MIN_FILMS} readable, in-scope frontal films; {len(src)} of "
             f"{len(files)} files could be used ({left} unreadable or declared out of scope, {n_out} outside what "
             "the model was made for); nothing was saved")
        return 2
    had_threshold = (S.read_profile(folder, name) or {}).get("recalibration")
    adapted = adapt_batchnorm(bundle, src, batch_size=batch_size, name=name)
    adapted.meta["site_profile"].update(n_files=len(files), n_unreadable_or_declared_out=left, n_out_of_scope_left_out=n_out,
                                        scope_check="the bundle's OOD check" if ood is not None else "unavailable")
    save_site_profile(adapted, folder, name)
    print(f"site profile '{name}': batch-norm statistics re-estimated on {len(src)} films ({left + n_out} left out: "
          f"{left} unreadable or declared out of scope, {n_out} outside what the model was made for) "
          f"for {bundle.model_id}; saved in {folder}")
    if had_threshold:
        print(f"note: the profile's local threshold was dropped (the network changed); run "
              f"`cxr-model site recalibrate {name} --data ...` again")
    return 0


def recalibrate_command(name: str, data: str, target: float = 0.95, model_dir: str | None = None) -> int:
    """Choose profile ``name``'s threshold on a labelled local set (Kaggle folders or ``path,label`` CSV)."""
    try:
        folder = S.site_folder()
        S.check_name(name)
        bundle = resolve_bundle(model_dir)
        site = S.apply_site(bundle, name, folder) if S.read_profile(folder, name) else bundle
        items, unlabelled = scan_labelled(data)
    except (ValueError, BundleError, FileNotFoundError) as exc:
        _err(f"error: {exc}")
        return 2
    try:
        ood = load_ood(bundle)
    except OodError as exc:
        ood = None
        _err(f"note: out-of-distribution check unavailable ({exc}); only DICOM-declared laterals are left out")
    for path, msg in unlabelled:
        _err(f"skipped {msg}")
    ys, ps, counts = [], [], Counter()
    for it in items:
        r = predict_source(site, it.path, name=str(it.path), ood=ood)
        if r.error:
            _err(f"skipped {r.error}")
            counts["unreadable"] += 1
        elif r.ood:
            counts["out_of_scope"] += 1
        else:
            ys.append(it.label)
            ps.append(r.probability)
            counts[r.population_source or "no population"] += 1
    try:
        rec = S.choose_threshold(ys, ps, target)
    except ValueError as exc:
        _err(f"error: {data}: {exc}")
        return 2
    rec.update(data=str(data), bn_adapted=bool(site.meta.get("site_profile", {}).get("n_films")),
               n_out_of_scope_left_out=counts.pop("out_of_scope", 0), n_unreadable=counts.pop("unreadable", 0),
               population_sources=dict(counts))
    S.save_recalibration(bundle, folder, name, rec)
    lo, hi = rec["sensitivity_ci95"], rec["specificity_ci95"]
    print(f"site profile '{name}': threshold {rec['threshold']:.3f} (bundled {bundle.threshold:.3f}) chosen on "
          f"n={rec['n']} ({rec['n_pneumonia']} pneumonia / {rec['n_normal']} normal; "
          f"{rec['n_out_of_scope_left_out']} out of scope left out): sensitivity {rec['sensitivity']:.3f} "
          f"[{lo[0]:.3f}, {lo[1]:.3f}], specificity {rec['specificity']:.3f} [{hi[0]:.3f}, {hi[1]:.3f}] "
          f"(target sensitivity {target:.2f}); saved in {folder}")
    return 0


def list_command(model_dir: str | None = None) -> int:
    """One line per saved profile: adapted on how many films, local threshold, for which weights."""
    s = get_settings()
    meta = metadata_or_none(model_dir or s.cxr_model_dir) or {}
    profiles = S.list_profiles(s.site_dir)
    if not profiles:
        print(f"no site profiles in {s.site_dir}")
        return 0
    for info in profiles:
        rec = info.get("recalibration")
        fits = "" if info.get("model_sha256") == meta.get("sha256") else f"  (made for other weights: {info.get('model')})"
        print(f"{info['name']}\tBN: {'%d films' % info.get('n_films', 0) if info['adapted'] else 'bundled'}\t"
              f"threshold: {'%.3f (n=%d)' % (rec['threshold'], rec['n']) if rec else 'bundled'}\t"
              f"{info.get('created', '')}{fits}")
    return 0
