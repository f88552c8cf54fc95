"""``cxr-model vitals {train,train-ensemble,evaluate,news2,fetch}``: registered into the main parser by :func:`register`."""
from __future__ import annotations

import logging
import sys


def _train(args) -> int:
    from cxr_model.vitals.train import VitalsTrainConfig, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fields = VitalsTrainConfig.__dataclass_fields__
    cfg = VitalsTrainConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    try:
        import torch

        torch.set_num_threads(args.threads)
        meta = train(cfg)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    v = meta["validation"]["lstm_48h"]
    print(f"wrote {cfg.out} (validation AUROC@48h {v['auroc']:.4f}, threshold {meta['threshold']['value']:.3f})")
    return 0


def _train_ensemble(args) -> int:
    from cxr_model.vitals.train_ensemble import train_ensemble

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        meta = train_ensemble(args.records, args.outcomes, args.lstm, args.out, folds=args.folds,
                              max_epochs=args.max_epochs, lstm_members=args.lstm_members, version=args.version,
                              tree_bags=args.tree_bags, deploy=args.deploy, extra=args.extra)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    v = meta["validation"]["ensemble_48h"]
    print(f"wrote {args.out} (out-of-fold AUROC@48h {v['auroc']:.4f}, threshold {meta['threshold']['value']:.3f})")
    return 0


def _evaluate(args) -> int:
    from cxr_model.settings import get_settings
    from cxr_model.vitals.evaluate import evaluate

    model = args.model or str(get_settings().vitals_model_dir)
    try:
        m = evaluate(args.records, args.outcomes, model, args.out, split=args.split)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for e in m["errors"]:
        print(f"skipped {e}", file=sys.stderr)
    for key in [k for k in m if isinstance(m[k], dict) and "auroc" in m[k]]:
        if key in m:
            g = m[key]
            e1, ci = g.get("event1"), g.get("event1_ci95")
            print(f"{key:10s} n={g['n']:5d} AUROC {g['auroc']:.4f} AUPRC {g['auprc']:.4f}"
                  + (f" event-1 {e1:.4f}" if e1 is not None else "")
                  + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if e1 is not None and ci and None not in ci else ""))
    for r in m.get("subgroups_48h", []):  # the 48 h risk at the alert threshold, by group
        print(f"  {r['grouping']}: {r['group']:30s} n={r['n']:5d} deaths={r['n_positive']:4d} "
              + ("too few stays to measure" if r.get("too_few") else
                 f"AUROC {r['auroc']:.4f} event-1 {r['event1']:.4f}"))
    if m.get("n_seen_in_training"):
        print(f"warning: {m['n_seen_in_training']} of these {m['n']} stays were used to train or tune the model "
              "(its splits.csv): on them the metrics are optimistic, not a validation", file=sys.stderr)
    print(f"wrote {args.out}/metrics.json (n={m['n']}, n_errors={m['n_errors']}, "
          f"readings dropped by the cleaning rules={m['n_dropped']}), and beside it predictions.csv and "
          "failure_cases.json (one row per stay: data, not for a model bundle)")
    return 0 if m["n"] else 1


def _news2(args) -> int:
    import json

    from cxr_model.vitals.grid import to_grid
    from cxr_model.vitals.news2 import LABELS, STAND_INS, news2_record
    from cxr_model.vitals.predict import last_hour
    from cxr_model.vitals.reader import RecordError
    from cxr_model.vitals.uploads import read_record_file

    try:
        record = read_record_file(args.record)
        hour = args.hour if args.hour is not None else last_hour(record)
        out = news2_record(to_grid(record), hour, args.spo2_scale)
    except (RecordError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"NEWS2 for record {out['record_id']} at hour {out['hour']} (SpO2 scale {args.spo2_scale})")
    for name, p in out["parameters"].items():
        if p["points"] is None and p["value"] is None:
            print(f"  {LABELS[name]:46s} missing (not measured in the window)")
        else:
            v = round(p["value"], 1) if isinstance(p["value"], float) else p["value"]
            pts = "not scorable (air/oxygen unknown)" if p["points"] is None else f"{p['points']} points"
            print(f"  {LABELS[name]:46s} {v!s:>9}  {pts}  ({p['hours_since_measured']:.0f} h ago)")
    flag = " INCOMPLETE: missing parameters score nothing" if out["incomplete"] else ""
    print(f"  aggregate {out['aggregate']}, response level {out['level']}{flag}")
    print(f"Stand-ins: {STAND_INS}")
    return 0


def _predict(args) -> int:
    import json

    from cxr_model.settings import get_settings
    from cxr_model.vitals.bundle import load_vitals_bundle
    from cxr_model.vitals.predict import predict_records
    from cxr_model.vitals.reader import read_batch
    from cxr_model.vitals.uploads import read_record_file

    records, errors = read_batch([(p, lambda p=p: read_record_file(p)) for p in args.records])
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    try:
        bundle = load_vitals_bundle(args.model or get_settings().vitals_model_dir)
        rows = predict_records(bundle, records, args.hour)
    except (OSError, ValueError) as exc:  # BundleError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"model": bundle.model_id, "threshold": bundle.threshold, "stays": rows, "errors": errors},
                         indent=2))
    else:
        print(f"{bundle.model_id}: risk of in-hospital death, alert threshold {100 * bundle.threshold:.1f}%. "
              "Decision support, not a diagnosis.")
        for r in rows:
            n = r["news2"]
            first = "not crossed" if r["first_alert_hour"] is None else f"first crossed at hour {r['first_alert_hour']}"
            print(f"  record {r['record_id']} at hour {r['hour']:2d}: risk {100 * r['risk']:5.1f}% "
                  f"({'ALERT' if r['alerting'] else 'below threshold'}; {first}); NEWS2 {n['aggregate']} "
                  f"{n['level']}{' (incomplete)' if n['incomplete'] else ''}")
    return 0 if not errors else (1 if rows else 2)


def _fetch(args) -> int:
    from cxr_model.vitals.fetch import DEFAULT_BASE_URL, fetch

    problems = fetch(args.dest, base_url=args.base_url or DEFAULT_BASE_URL, sets=args.sets.split(","))
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


def register(subparsers) -> None:
    """Add ``vitals`` and its sub-commands to the main parser's sub-parsers."""
    v = subparsers.add_parser("vitals", help="ward vitals: PhysioNet 2012 LSTM early warning")
    vs = v.add_subparsers(dest="vitals_command", required=True)

    t = vs.add_parser("train", help="train the vitals LSTM on a PhysioNet 2012 set")
    t.add_argument("--records", required=True, help="folder of <RecordID>.txt files (e.g. set-a)")
    t.add_argument("--outcomes", required=True, help="Outcomes-a.txt")
    t.add_argument("--out", required=True, help="bundle folder to write")
    t.add_argument("--hidden", type=int)
    t.add_argument("--members", type=int, help="LSTMs in the ensemble (default 5)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--patience", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--dropout", type=float)
    t.add_argument("--weight-decay", dest="weight_decay", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--max-records", dest="max_records", type=int, help="use only this many stays (smoke runs)")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    t.set_defaults(func=_train)

    te = vs.add_parser("train-ensemble", help="LSTMs + gradient-boosted trees on train + validation, choices on "
                                              "cross-validated predictions -> ensemble bundle")
    te.add_argument("--records", required=True)
    te.add_argument("--outcomes", required=True)
    te.add_argument("--lstm", required=True, help="the LSTM bundle (its splits.csv and hyper-parameters are reused)")
    te.add_argument("--out", required=True)
    te.add_argument("--folds", type=int, default=5)
    te.add_argument("--max-epochs", type=int, default=16, help="most epochs per LSTM; the number used is chosen "
                                                               "on out-of-fold AUROC")
    te.add_argument("--lstm-members", type=int, default=4, help="LSTMs averaged")
    te.add_argument("--version", default="2.2.0", help="the bundle's version (2.2.0: the fold models deployed)")
    te.add_argument("--tree-bags", type=int, default=1, help="tree models averaged, each split choosing among a "
                                                           "random 30%% of the features (bundled: 1)")
    te.add_argument("--deploy", choices=("refit", "folds"), default="folds",
                    help="bundle the cross-validation's fold models averaged (2.2.0), or models refitted on all stays (2.1.0)")
    te.add_argument("--extra", nargs=2, metavar=("RECORDS", "OUTCOMES"),
                    help="more labelled stays (a folder of records and its outcomes file, e.g. set-c and Outcomes-c.txt) "
                         "trained on beside train + validation; never stays of the split")
    te.set_defaults(func=_train_ensemble)

    e = vs.add_parser("evaluate", help="LSTM, NEWS2 and SAPS-I at 24 h and 48 h -> metrics.json")
    e.add_argument("--records", required=True)
    e.add_argument("--outcomes", required=True)
    e.add_argument("--model", help="bundle folder (default: the bundled vitals model)")
    e.add_argument("--out", required=True)
    e.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                   help="score only this split of the bundle's splits.csv (default: every record)")
    e.set_defaults(func=_evaluate)

    n = vs.add_parser("news2", help="NEWS2 (RCP 2017) of one record at one hour, from the observations up to it")
    n.add_argument("record", help="a <RecordID>.txt in PhysioNet 2012 format, or one stay as a FHIR R4 Bundle (*.json)")
    n.add_argument("--hour", type=int, help="hour since ICU admission, 1-48 (default: the record's last hour)")
    n.add_argument("--spo2-scale", dest="spo2_scale", type=int, default=1, choices=[1, 2],
                   help="SpO2 scale 2 for hypercapnic respiratory failure, chosen by a clinician (default 1)")
    n.add_argument("--json", action="store_true", help="print JSON")
    n.set_defaults(func=_news2)

    p = vs.add_parser("predict", help="the model's risk and NEWS2 at one hour of each record (a bad file is named, "
                                      "the others are scored)")
    p.add_argument("records", nargs="+", help="<RecordID>.txt files in PhysioNet 2012 format, or FHIR R4 Bundles "
                   "(*.json, one stay each)")
    p.add_argument("--model", help="bundle folder (default: the bundled vitals model)")
    p.add_argument("--hour", type=int, help="hour since ICU admission, 1-48 (default: each record's last hour)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_predict)

    f = vs.add_parser("fetch", help="download the public challenge sets (set-a, set-b, set-c + outcomes)")
    f.add_argument("--dest", required=True)
    f.add_argument("--base-url", dest="base_url", help="mirror of physionet.org/files/challenge-2012/1.0.0/")
    f.add_argument("--sets", default="a,b", help="comma-separated, of a, b and c (default a,b)")
    f.set_defaults(func=_fetch)
