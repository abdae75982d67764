"""``landscape demo``: the README's main job, offline — train an MLP and a ConvNet on the embedded digits with the
landscape callback attached, then print a summary table and write a report folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import nonneg_int, positive_int

DESCRIPTION = "Offline demo: train MLP + ConvNet on digits with the landscape callback; print a table, write a report."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--epochs", type=positive_int, default=15)
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from callbacks.landscape import LandscapeCallback
    from landscape.analysis import SUMMARY_COLUMNS, TABLE_COLUMNS, AnalysisOptions, summary_row
    from landscape.report import format_table
    from landscape.results import atomic_write_csv, atomic_write_json

    from .train import add_arguments as train_arguments
    from .train import train

    out = Path(args.out)
    tp = argparse.ArgumentParser()
    train_arguments(tp)
    rows, results, t_start = [], {}, time.perf_counter()
    for model in ("mlp", "convnet"):
        cb = LandscapeCallback(AnalysisOptions(n_samples=300, grid_points=21, seed=args.seed), n_eval=500)
        argv = [
            "--model",
            model,
            "--data",
            "digits",
            "--epochs",
            str(args.epochs),
            "--seed",
            str(args.seed),
            "--out",
            str(out / model),
        ] + (["--quiet"] if args.quiet else [])
        summary = train(tp.parse_args(argv), extra_callbacks=[cb])
        assert cb.last is not None
        row = summary_row(str(Path(summary["checkpoint"])), summary["model"], cb.last)
        row["val_acc"] = summary["val_acc"]
        rows.append(row)
        results[model] = {"train": summary, "landscape": cb.last.to_dict()}
    report = out / "report"
    atomic_write_csv(report / "summary.csv", rows, [*SUMMARY_COLUMNS, "val_acc"])
    atomic_write_json(report / "results.json", results)
    cols = ["model", "val_acc", *TABLE_COLUMNS[2:]]
    print("\n" + format_table(rows, cols))
    print(
        f"\nreport: {report}/summary.csv, {report}/results.json; figures under {out}/<model>/landscape/epoch=*/ "
        f"({time.perf_counter() - t_start:.0f} s)"
    )
    return 0
