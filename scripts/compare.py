"""``landscape compare``: ResNet-D with and without skip connections, trained (or loaded) and analysed identically."""

from __future__ import annotations

import argparse
import time

from .analyze import add_analysis_arguments, load_eval_data, options_from, planned, report_time
from .common import add_data_arguments, fail, output_folder, positive_int

DESCRIPTION = "Compare ResNet-D with and without skip connections: same directions' seeds, same evaluation subset."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--depth", type=positive_int, default=20, help="ResNet depth 6n+2")
    p.add_argument("--width", type=positive_int, default=1, help="width multiplier")
    add_data_arguments(p)
    p.add_argument("--epochs", type=positive_int, default=10, help="training epochs per model")
    p.add_argument("--recipe", choices=["li2018", "adam"], default="adam", help="training recipe")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue interrupted training runs in --out")
    g.add_argument("--overwrite", action="store_true", help="replace earlier training runs in --out")
    p.add_argument("--ckpt-skip", default=None, help="use this checkpoint instead of training the skip model")
    p.add_argument("--ckpt-noskip", default=None, help="use this checkpoint instead of training the no-skip model")
    p.add_argument("--out", required=True, help="output folder")
    add_analysis_arguments(p)


def _training_plan(args: argparse.Namespace, splits) -> None:
    """The training phase's predicted minutes for both models (:func:`landscape.plan.training_seconds`), printed
    before the work; nothing when both checkpoints are given."""
    import math

    from landscape.analysis import seeded
    from landscape.models import build_model
    from landscape.models.registry import model_config
    from landscape.plan import training_seconds

    batch, total = 128, 0.0
    for skip, ck in ((True, args.ckpt_skip), (False, args.ckpt_noskip)):
        if ck is not None:
            continue
        cfg = model_config(f"resnet{args.depth}", splits.input_shape, splits.num_classes, skip=skip, width=args.width)
        x, y = splits.train_x[:batch], splits.train_y[:batch]
        steps, val = math.ceil(len(splits.train_y) / batch), math.ceil(len(splits.val_y) / batch)
        net = seeded(lambda cfg=cfg: build_model(cfg))  # the caller's random streams untouched
        total += training_seconds(net, x, y, steps_per_epoch=steps, epochs=args.epochs, val_batches=val)
    if total:
        print(f"plan: training 2 × {args.epochs} epochs of ResNet-{args.depth} on {len(splits.train_y)} images: "
              f"predicted {total / 60:.1f} min (then each analysis's plan)", flush=True)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from landscape.analysis import SUMMARY_COLUMNS, TABLE_COLUMNS, analyze_model, summary_row
    from landscape.files import atomic_write_json
    from landscape.models.checkpoints import CheckpointError, load_network
    from landscape.models.registry import describe, model_config
    from landscape.models.training import TrainingStopped, TrainSettings, train_model
    from landscape.report.figures import blocks_panel, convexity_panel, dc_vs_analytic, format_table, skip_panel
    from landscape.report.writing import clear_stale, write_analysis, write_summary

    if args.depth < 8 or (args.depth - 2) % 6:
        fail(f"--depth must be 6n+2 (20, 32, 44, 56, 110), got {args.depth}")
    opts = options_from(args)
    out = output_folder(args.out)
    owned = ("comparison.csv", "comparison.json", "skip_vs_noskip.png", "dc_vs_analytic.png")
    owned += ("blocks_skip_vs_noskip.png", "convexity_skip_vs_noskip.png")
    clear_stale([out / f for f in owned])
    splits, data = load_eval_data(args)
    _training_plan(args, splits)
    t0 = time.perf_counter()
    rows, results = [], {}
    for label, skip, ck in (("skip", True, args.ckpt_skip), ("noskip", False, args.ckpt_noskip)):
        cfg = model_config(f"resnet{args.depth}", splits.input_shape, splits.num_classes, skip=skip, width=args.width)
        if ck is None:
            settings = TrainSettings(
                out=str(out / label),
                model=f"resnet{args.depth}",
                model_options={"width": args.width, "skip": skip},
                data=args.data,
                data_dir=args.data_dir,
                recipe="li2018" if args.recipe == "li2018" else None,
                epochs=args.epochs,
                seed=args.seed,
                resume=args.resume,
                overwrite=args.overwrite,
                quiet=args.quiet,
            )
            try:
                ck = train_model(settings)["checkpoint"]
            except (ValueError, TrainingStopped) as exc:
                fail(str(exc), code=143 if isinstance(exc, TrainingStopped) else 2)
        try:
            net, cfg_loaded = load_network(ck, cfg)
        except CheckpointError as exc:
            fail(str(exc))
        if cfg_loaded.get("skip") != skip:
            fail(f"{ck}: is {describe(cfg_loaded)}, expected {'with' if skip else 'without'} skip connections")
        name = f"{describe(cfg_loaded)} ({label})"
        try:
            o, d, plan, start = planned(net, data, opts, name, args.budget)
            result = analyze_model(net, d, options=o, progress=not args.quiet, label=name)
            report_time(result, plan, start, name)
            write_analysis(result, out / label / "analysis", name, html=args.html, vtk=args.vtk)
        except (ValueError, RuntimeError, ArithmeticError) as exc:
            fail(f"{ck}: {exc}")
        rows.append(summary_row(str(ck), describe(cfg_loaded), result))
        results[label] = result
    skip_panel(results["skip"], results["noskip"], out / "skip_vs_noskip.png", f"ResNet-{args.depth} on {args.data}")
    if results["skip"].blocks and results["noskip"].blocks:
        blocks_panel(results["skip"], results["noskip"], out / "blocks_skip_vs_noskip.png",
                     f"ResNet-{args.depth} on {args.data}: Hessian spectrum per stage")  # fmt: skip
    if results["skip"].eigen_map is not None and results["noskip"].eigen_map is not None:
        convexity_panel(results["skip"], results["noskip"], out / "convexity_skip_vs_noskip.png",
                        f"ResNet-{args.depth} on {args.data}: convexity maps (Li et al. 2018)")  # fmt: skip
    write_summary(out / "comparison.csv", rows, SUMMARY_COLUMNS)
    dc_vs_analytic(rows, out / "dc_vs_analytic.png")
    atomic_write_json(out / "comparison.json", {k: r.to_dict() for k, r in results.items()})
    print("\n" + format_table(rows, TABLE_COLUMNS[1:]))
    for label, r in results.items():
        for warning in r.warnings:
            print(f"{label}: warning: {warning}")
    print(f"\nwrote {out / 'skip_vs_noskip.png'}, {out / 'comparison.csv'} ({time.perf_counter() - t0:.0f} s)")
    return 0
