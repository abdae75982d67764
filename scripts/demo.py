"""``landscape demo``: the README's main job, offline — train an MLP and a ConvNet on the embedded digits with the
landscape callback attached, then print a summary table and write a report folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import fail, output_folder, positive_int, seed_value

DESCRIPTION = "Offline demo: train MLP + ConvNet on digits with the landscape callback; print a table, write a report."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--epochs", type=positive_int, default=15, help="training epochs per model")
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted demo in --out (else an earlier one is replaced)"
    )
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (0..2^32-1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from landscape.analysis import SUMMARY_COLUMNS, TABLE_COLUMNS, AnalysisOptions, summary_row
    from landscape.callbacks.landscape import LandscapeCallback
    from landscape.files import atomic_write_json
    from landscape.models.training import TrainingStopped, TrainSettings, train_model
    from landscape.report.figures import dc_vs_analytic, format_table
    from landscape.report.writing import clear_stale, write_summary

    out = output_folder(args.out)
    report = out / "report"
    clear_stale([report / "summary.csv", report / "results.json", report / "dc_vs_analytic.png"])
    rows, results, t_start = [], {}, time.perf_counter()
    for model in ("mlp", "convnet"):
        # analysed after the first epoch, half way and at the end: curvature over training (history.png)
        early = (0, args.epochs // 2) if args.epochs >= 3 else ()
        cb = LandscapeCallback(AnalysisOptions(seed=args.seed), at_epochs=early, progress=not args.quiet)
        settings = TrainSettings(
            out=str(out / model),
            model=model,
            epochs=args.epochs,
            seed=args.seed,
            quiet=args.quiet,
            resume=args.resume and (out / model / "checkpoints" / "last.ckpt").is_file(),
            overwrite=not args.resume,
        )
        try:
            summary = train_model(settings, extra_callbacks=[cb])
        except (ValueError, TrainingStopped) as exc:
            fail(str(exc), code=143 if isinstance(exc, TrainingStopped) else 2)
        if cb.last is None:
            fail(f"{model}: the landscape analysis at the end of training failed (see the line above)")
        row = summary_row(str(Path(summary["checkpoint"])), summary["model"], cb.last)
        row["val_acc"] = summary["val_acc"]
        rows.append(row)
        results[model] = {"train": summary, "landscape": cb.last.to_dict()}
    write_summary(report / "summary.csv", rows, [*SUMMARY_COLUMNS, "val_acc"])
    dc_vs_analytic(rows, report / "dc_vs_analytic.png")
    atomic_write_json(report / "results.json", results)
    cols = ["model", "val_acc", *TABLE_COLUMNS[2:]]
    print("\n" + format_table(rows, cols))
    print(
        f"\nreport: {report}/summary.csv, {report}/results.json; figures under {out}/<model>/landscape/epoch=*/ "
        f"({time.perf_counter() - t_start:.0f} s)"
    )
    return 0
