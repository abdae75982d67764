"""``landscape compare``: ResNet-D with and without skip connections, trained (or loaded) and analysed identically."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .analyze import add_analysis_arguments, load_eval_data, options_from
from .common import add_data_arguments, fail, positive_int

DESCRIPTION = "Compare ResNet-D with and without skip connections: same directions' seeds, same evaluation subset."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--depth", type=positive_int, default=20, help="ResNet depth 6n+2 (default 20)")
    p.add_argument("--width", type=positive_int, default=1, help="width multiplier")
    add_data_arguments(p)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--recipe", choices=["li2018", "adam"], default="adam", help="training recipe (default adam)")
    p.add_argument("--ckpt-skip", default=None, help="use this checkpoint instead of training the skip model")
    p.add_argument("--ckpt-noskip", default=None, help="use this checkpoint instead of training the no-skip model")
    p.add_argument("--out", required=True)
    add_analysis_arguments(p)


def run(args: argparse.Namespace) -> int:
    from landscape.analysis import SUMMARY_COLUMNS, TABLE_COLUMNS, analyze_model, summary_row
    from landscape.report import analysis_figures, format_table, skip_panel
    from landscape.results import atomic_write_csv, atomic_write_json
    from models.checkpoints import CheckpointError, load_network
    from models.registry import describe, model_config

    from .train import add_arguments as train_arguments
    from .train import train

    if args.depth < 8 or (args.depth - 2) % 6:
        fail(f"--depth must be 6n+2 (20, 32, 44, 56, 110), got {args.depth}")
    opts = options_from(args)
    splits, data = load_eval_data(args)
    out, t0 = Path(args.out), time.perf_counter()
    tp = argparse.ArgumentParser()
    train_arguments(tp)
    rows, results = [], {}
    for label, skip, ck in (("skip", True, args.ckpt_skip), ("noskip", False, args.ckpt_noskip)):
        cfg = model_config(f"resnet{args.depth}", splits.input_shape, splits.num_classes, skip=skip, width=args.width)
        if ck is None:
            argv = [
                "--model",
                f"resnet{args.depth}",
                "--width",
                str(args.width),
                "--data",
                args.data,
                "--epochs",
                str(args.epochs),
                "--out",
                str(out / label),
                "--seed",
                str(args.seed),
            ]
            argv += ["--data-dir", args.data_dir] if args.data_dir else []
            argv += ["--no-skip"] if not skip else []
            argv += ["--recipe", "li2018"] if args.recipe == "li2018" else []
            argv += ["--quiet"] if args.quiet else []
            ck = train(tp.parse_args(argv))["checkpoint"]
        try:
            net, cfg_loaded = load_network(ck, cfg)
        except CheckpointError as exc:
            fail(str(exc))
        if cfg_loaded.get("skip") != skip:
            fail(f"{ck}: is {describe(cfg_loaded)}, expected {'with' if skip else 'without'} skip connections")
        result = analyze_model(net, data, opts, progress=not args.quiet)
        analysis_figures(result, out / label / "analysis", f"{describe(cfg_loaded)} ({label})")
        result.save(out / label / "analysis")
        rows.append(summary_row(str(ck), describe(cfg_loaded), result))
        results[label] = result
    skip_panel(results["skip"], results["noskip"], out / "skip_vs_noskip.png", f"ResNet-{args.depth} on {args.data}")
    atomic_write_csv(out / "comparison.csv", rows, SUMMARY_COLUMNS)
    atomic_write_json(out / "comparison.json", {k: r.to_dict() for k, r in results.items()})
    print("\n" + format_table(rows, TABLE_COLUMNS[1:]))
    for label, r in results.items():
        for warning in r.warnings:
            print(f"{label}: warning: {warning}")
    print(f"\nwrote {out / 'skip_vs_noskip.png'}, {out / 'comparison.csv'} ({time.perf_counter() - t0:.0f} s)")
    return 0
