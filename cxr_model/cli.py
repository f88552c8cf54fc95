"""The ``cxr-model`` command line: train, predict, evaluate, ood fit (and ``vitals ...``)."""
from __future__ import annotations

import argparse
import sys


def _train(args) -> int:
    from cxr_model.imaging.config import TrainConfig
    from cxr_model.imaging.train import train

    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    meta = train(cfg)
    if meta:
        print(f"wrote {cfg.out} (validation AUROC {meta['validation']['auroc']:.4f}, threshold {meta['threshold']['value']:.3f})")
    return 0


def _predict(args) -> int:
    from cxr_model.imaging.predict import predict_command

    return predict_command(args.files, args.model, args.json, site=args.site)


def _evaluate(args) -> int:
    from cxr_model.imaging.evaluate_command import evaluate_command

    return evaluate_command(args.data, args.model, args.out, batch_size=args.batch_size, workers=args.workers,
                            site=args.site, split=args.split)


def _site(args) -> int:
    from cxr_model.imaging import site_commands as C

    if args.site_command == "adapt":
        return C.adapt_command(args.name, args.inputs, args.model)
    if args.site_command == "recalibrate":
        return C.recalibrate_command(args.name, args.data, args.target_sensitivity, args.model)
    return C.list_command(args.model)


def _ood_fit(args) -> int:
    from cxr_model.imaging.ood import fit_command

    return fit_command(args.model_dir, args.max_train)


def _ood_fit_layout(args) -> int:
    from cxr_model.imaging.layout_fit import fit_layout_command

    return fit_layout_command(args.model_dir)


def _audit_export(args) -> int:
    from datetime import datetime, timezone

    from cxr_model.audit import audit_csv, export

    since = None
    if args.since:
        since = datetime.fromisoformat(args.since)
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    filters = dict(actor=args.actor, action=args.action, since=since)
    if args.out == "-":
        sys.stdout.write(audit_csv(args.db, **filters).decode("utf-8"))
        return 0
    n = export(args.out, args.db, **filters)
    print(f"{n} audit events written to {args.out}", file=sys.stderr)
    return 0


def _db_upgrade(args) -> int:
    from cxr_model.db import engine_for
    from cxr_model.settings import get_settings

    engine_for(args.db or get_settings().db_url)
    print("database at the newest revision", file=sys.stderr)
    return 0


def _explain(args) -> int:
    from cxr_model.imaging.explain_files import explain_command

    return explain_command(args.files, args.model, args.method, args.layer, args.json, args.out)


def _pointing(args) -> int:
    from cxr_model.imaging.pointing import pointing_command

    return pointing_command(args.model_dir, args.splits, args.methods, args.slow, args.write, args.json)


def _adult_branch_fit(args) -> int:
    from cxr_model.imaging.branch_fit import fit_command

    return fit_command(args)


def _adult_branch_cv(args) -> int:
    from cxr_model.imaging.branch_cv import cv_command

    return cv_command(args)


def _head_fit(args) -> int:
    from cxr_model.imaging.head_fit import fit_command

    return fit_command(args)


def _operating_fit(args) -> int:
    from cxr_model.imaging.operating_fit import fit_command

    return fit_command(args.model_dir, args.max_child_train, args.cache)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxr-model", description="Chest X-ray pneumonia model and ward vitals tools.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the pneumonia classifier (torchrun-compatible)")
    t.add_argument("--data", required=True, help="Kermany folder (with manifest.csv, or train/{NORMAL,PNEUMONIA})")
    t.add_argument("--out", required=True, help="bundle folder to write (model.pt, metadata.json, MODEL_CARD.md)")
    t.add_argument("--arch")
    t.add_argument("--epochs", type=int)
    t.add_argument("--img-size", dest="img_size", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--patience", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--max-items", dest="max_items", type=int, help="use only this many training files (smoke runs)")
    t.add_argument("--max-steps", dest="max_steps", type=int, help="steps per epoch cap (smoke runs)")
    t.add_argument("--workers", type=int)
    t.add_argument("--name")
    t.add_argument("--version")
    t.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    t.add_argument("--select-on", dest="select_on", choices=["hard", "clean"],
                   help="model selection: validation pooled with acquisition shifts (hard, default) or as is")
    t.add_argument("--adult-data", dest="adult_data", help="nih_adult folder: train on children and adults (model 2)")
    t.add_argument("--init-from", dest="init_from", help="bundle folder whose weights start the run")
    t.add_argument("--kermany-splits", dest="kermany_splits", help="a bundle's splits.csv: reuse its Kermany split")
    t.add_argument("--mix", type=int, help="with --adult-data: films per population per epoch (default 1500)")
    t.add_argument("--site-augment", dest="site_augment", action="store_true", default=None,
                   help="add JPEG-quality and burned-in marker augmentation")
    t.add_argument("--threads", type=int, help="torch intra-op threads")
    t.add_argument("--finish-only", dest="finish_only", action="store_true", default=None,
                   help="with --adult-data: build the bundle from OUT/checkpoints/best.pt without training")
    t.add_argument("--time-budget-min", dest="time_budget_min", type=float,
                   help="with --adult-data: stop after this many minutes of training; LR follows a cosine of elapsed time")
    t.add_argument("--select-child-n", dest="select_child_n", type=int,
                   help="with --adult-data: per-epoch selection on this many child val films (seeded, stratified)")
    t.add_argument("--mix-adult", dest="mix_adult", type=int, help="with --adult-data: adult films per epoch (default: --mix)")
    t.add_argument("--confirmed-weight", dest="confirmed_weight", type=float,
                   help="with --adult-data: draw weight of RSNA-confirmed adult films (confirmed_by rsna/both; default 1)")
    t.set_defaults(func=_train)

    pr = sub.add_parser("predict", help="P(pneumonia) for image files (PNG/JPEG/DICOM)")
    pr.add_argument("files", nargs="+")
    pr.add_argument("--model", help="bundle folder (default: the bundled model)")
    pr.add_argument("--json", action="store_true", help="one JSON object per line")
    pr.add_argument("--site", help="use this saved site profile (see `cxr-model site list`)")
    pr.set_defaults(func=_predict)

    ev = sub.add_parser("evaluate", help="score a labelled set (Kaggle folders or CSV path,label)")
    what = ev.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", help="Kaggle-layout folder or path,label CSV")
    what.add_argument("--split", choices=["test", "val"],
                      help="the model's own held-out test or validation split (its splits.csv, both populations; "
                           "films under the data folder, CXR_DATA_DIR)")
    ev.add_argument("--model")
    ev.add_argument("--out", required=True)
    ev.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    ev.add_argument("--workers", type=int, default=2)
    ev.add_argument("--site", help="use this saved site profile (see `cxr-model site list`)")
    ev.set_defaults(func=_evaluate)

    ex = sub.add_parser("explain", help="CAM per file: probability, method, peak_xy (original pixels), overlay PNG")
    ex.add_argument("files", nargs="+")
    ex.add_argument("--model", help="bundle folder (default: the bundled model)")
    ex.add_argument("--method", help="CAM method (default: the bundle's, chosen by `cxr-model pointing`)")
    ex.add_argument("--layer", help="target layer (default: the bundle's)")
    ex.add_argument("--json", action="store_true", help="one JSON object per line")
    ex.add_argument("--out", help="folder for the overlay PNGs")
    ex.set_defaults(func=_explain)

    pg = sub.add_parser("pointing", help="localisation table: pointing game and CAM energy on the RSNA boxes")
    pg.add_argument("--model-dir", dest="model_dir", default=None)
    pg.add_argument("--splits", help="splits.csv naming the val/test patients (default: the bundle's)")
    pg.add_argument("--methods", nargs="+", help="CAM methods to measure (default: all but the slow ones)")
    pg.add_argument("--slow", action="store_true", help="include ScoreCAM (one forward per channel)")
    pg.add_argument("--write", action="store_true", help="save the best pair on validation as the bundle's explain.json")
    pg.add_argument("--json", action="store_true")
    pg.set_defaults(func=_pointing)

    si = sub.add_parser("site", help="site profiles: BN adaptation on local films, a local threshold (CXR_SITE_DIR)")
    ssub = si.add_subparsers(dest="site_command", required=True)
    sa = ssub.add_parser("adapt", help="re-estimate batch-norm statistics on unlabelled local films; save profile NAME")
    sa.add_argument("name")
    sa.add_argument("inputs", nargs="+", metavar="FILES_OR_FOLDER")
    sr = ssub.add_parser("recalibrate", help="choose profile NAME's threshold on a small labelled local set")
    sr.add_argument("name")
    sr.add_argument("--data", required=True, help="Kaggle folders (NORMAL/, PNEUMONIA/) or a CSV path,label")
    sr.add_argument("--target-sensitivity", dest="target_sensitivity", type=float, default=0.95)
    sl = ssub.add_parser("list", help="the saved site profiles")
    for x in (sa, sr, sl):
        x.add_argument("--model", help="bundle folder (default: the bundled model)")
        x.set_defaults(func=_site)

    o = sub.add_parser("ood", help="out-of-distribution statistics of the chest X-ray bundle")
    osub = o.add_subparsers(dest="ood_command", required=True)
    of = osub.add_parser("fit", help="fit the OOD statistics (writes ood.pt and ood.json into the bundle)")
    of.add_argument("--model-dir", dest="model_dir", default=None)
    of.add_argument("--max-train", dest="max_train", type=int, default=1500)
    of.set_defaults(func=_ood_fit)
    ol = osub.add_parser("fit-layout", help="fit the image check (blank image, not a frontal chest view) into ood.pt/ood.json")
    ol.add_argument("--model-dir", dest="model_dir", default=None)
    ol.set_defaults(func=_ood_fit_layout)

    a = sub.add_parser("audit", help="the audit trail (who did what, when, on which image or record)")
    asub = a.add_subparsers(dest="audit_command", required=True)
    ae = asub.add_parser("export", help="write the audit trail as CSV (oldest first)")
    ae.add_argument("--out", default="-", help="CSV file to write (default: standard output)")
    ae.add_argument("--db", default=None, help="SQLAlchemy URL (default: CXR_DB_URL / the settings)")
    ae.add_argument("--actor", default=None, help="only this person's events")
    ae.add_argument("--action", default=None, help="only this action, e.g. decision.save")
    ae.add_argument("--since", default=None, help="ISO 8601 time (UTC unless it says otherwise)")
    ae.set_defaults(func=_audit_export)
    d = sub.add_parser("db", help="the decision and audit database")
    dsub = d.add_subparsers(dest="db_command", required=True)
    du = dsub.add_parser("upgrade", help="migrate the database to the newest revision (the app does it on start)")
    du.add_argument("--db", default=None, help="SQLAlchemy URL (default: CXR_DB_URL / the settings)")
    du.set_defaults(func=_db_upgrade)


    op = sub.add_parser("operating-point", help="population-aware operating point of a two-population bundle")
    opsub = op.add_subparsers(dest="op_command", required=True)
    opf = opsub.add_parser("fit", help="population model, centred calibration, threshold and OOD refit (writes into the bundle)")
    opf.add_argument("--model-dir", dest="model_dir", required=True)
    opf.add_argument("--max-child-train", dest="max_child_train", type=int, default=600)
    opf.add_argument("--cache", help="features/logits .npz: reused when it matches the films, else written on first use")
    opf.set_defaults(func=_operating_fit)

    hd = sub.add_parser("head", help="the 224 px network's linear head")
    hdsub = hd.add_subparsers(dest="head_command", required=True)
    hdf = hdsub.add_parser("fit", help="refit the head with sharpness-balancing variants (backbone kept) into a new "
                                       "bundle; then run operating-point fit on it")
    hdf.add_argument("--model-dir", dest="model_dir", required=True)
    hdf.add_argument("--out", required=True, help="folder of the new bundle")
    hdf.add_argument("--name", required=True)
    hdf.add_argument("--version", required=True)
    hdf.set_defaults(func=_head_fit)

    ab = sub.add_parser("adult-branch", help="the adults' 448 px branch of a two-population bundle")
    absub = ab.add_subparsers(dest="ab_command", required=True)
    abf = absub.add_parser("fit", help="train the branch head on the adult training films, choose its operating point "
                                       "on validation, measure, and write a new bundle")
    abf.add_argument("--model-dir", dest="model_dir", required=True, help="bundle without a branch (e.g. v2.1)")
    abf.add_argument("--out", required=True, help="folder of the new bundle")
    abf.add_argument("--name", required=True)
    abf.add_argument("--version", required=True)
    abf.add_argument("--size", type=int, default=448)
    abf.add_argument("--box-weight", dest="box_weight", type=float, default=1.0)
    abf.add_argument("--epochs", type=int, default=200)
    abf.add_argument("--prior-floor", dest="prior_floor", type=float, default=None,
                     help="weight each cell by where the training boxes lie (smoothed, at least this floor); off if unset")
    abf.add_argument("--prior-sigma", dest="prior_sigma", type=float, default=1.0, help="smoothing of the prior, in cells")
    abf.add_argument("--cache", help="feature maps .npz: reused when it matches the films, else written on first use")
    abf.set_defaults(func=_adult_branch_fit)
    abc = absub.add_parser("cv", help="cross-validate the branch's recipe by patient over the adult training and "
                                      "validation films: out-of-fold AUROC and pointing of the shown map")
    abc.add_argument("--model-dir", dest="model_dir", required=True, help="bundle with an adult branch")
    abc.add_argument("--folds", type=int, default=5)
    abc.add_argument("--cache", help="the branch fit's feature maps .npz (its train and val parts are reused)")
    abc.add_argument("--write", action="store_true", help="store the figures in the bundle's metadata and card")
    abc.set_defaults(func=_adult_branch_cv)

    try:
        from cxr_model.vitals.cli import register as register_vitals
    except ImportError:
        register_vitals = None
    if register_vitals is not None:
        register_vitals(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
