"""``landscape compare``: several models (by default ResNet-D with and without skip connections) trained (or
loaded) and analysed identically, reported side by side; ``--preset cpu`` and ``--preset paper`` set up Li et
al.'s comparison at two scales."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from .analyze import add_analysis_arguments, load_eval_data, options_from, planned, report_time
from .common import add_data_arguments, fail, output_folder, positive_int

DESCRIPTION = "Compare models (default: ResNet-D with and without skips), analysed alike; one table and one figure."

# Each preset is a set of defaults (flags given on the command line win). cpu: ResNet-20 ±skip on the MNIST split,
# ≤ 20 min on 2 cores with training (README "landscape compare"); paper: Li et al. (2018)'s models, data,
# augmentation and schedule, for a GPU.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "depth": 20,
        "models": None,
        "data": "mnist",
        "epochs": 4,
        "recipe": "adam",
        "n_eval": 256,
        "grid_points": 11,
        "budget": 6.0,
    },
    "paper": {
        "depth": 56,
        "models": ["resnet56", "resnet56-noskip", "resnet110-noskip", "densenet121"],
        "data": "cifar10",
        "augment": True,
        "recipe": "li2018",
        "epochs": 300,
        "n_eval": 5000,
        "grid_points": 51,
        "n_samples": 1000,
        "accelerator": "auto",
    },
}
MAX_MODELS = 8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="cpu: ResNet-20 ±skip on MNIST in ≤ 20 min on 2 cores; paper: ResNet-56 ±skip, ResNet-110 "
                        "without skips and DenseNet-121 on CIFAR-10 as Li et al. (2018) trained them, for a GPU; "
                        "flags given beside a preset override it")  # fmt: skip
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help=f"up to {MAX_MODELS} models: resnetD, resnetD-noskip, densenet121, convnet, mlp "
                        "(default: resnetD and resnetD-noskip of --depth)")  # fmt: skip
    p.add_argument("--depth", type=positive_int, default=20, help="ResNet depth 6n+2 (the default pair's)")
    p.add_argument("--width", type=positive_int, default=1, help="ResNet width multiplier")
    add_data_arguments(p)
    p.add_argument("--augment", action="store_true", help="train with random crops and flips (Li et al.)")
    p.add_argument("--epochs", type=positive_int, default=10, help="training epochs per model")
    p.add_argument("--recipe", choices=["li2018", "adam"], default="adam", help="training recipe")
    p.add_argument("--accelerator", choices=["cpu", "gpu", "auto"], default="cpu",
                   help="where training and analysis run (one device; auto: a GPU when there is one)")  # fmt: skip
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue interrupted training runs in --out")
    g.add_argument("--overwrite", action="store_true", help="replace earlier training runs in --out")
    p.add_argument("--ckpt", action="append", default=[], metavar="MODEL=PATH",
                   help="use this checkpoint instead of training MODEL (repeat for several models)")  # fmt: skip
    p.add_argument("--ckpt-skip", default=None, help="same as --ckpt resnetD=PATH")
    p.add_argument("--ckpt-noskip", default=None, help="same as --ckpt resnetD-noskip=PATH")
    p.add_argument("--out", required=True, help="output folder")
    add_analysis_arguments(p)


def model_specs(args: argparse.Namespace) -> list[str]:
    """The models, checked: known names, ResNet depths of the form 6n+2, each once, at most :data:`MAX_MODELS`."""
    from landscape.models.registry import parse_spec

    specs = list(args.models) if args.models else [f"resnet{args.depth}", f"resnet{args.depth}-noskip"]
    if len(specs) > MAX_MODELS or len(set(specs)) < len(specs):
        fail(f"--models: name up to {MAX_MODELS} different models, got {' '.join(specs)}")
    for spec in specs:
        try:
            parse_spec(spec)
        except ValueError as exc:
            fail(f"--models: {exc}")
        if spec.startswith("resnet"):
            depth = int(spec[6:].split("-")[0])
            if depth < 8 or (depth - 2) % 6:
                fail(f"--depth must be 6n+2 (20, 32, 44, 56, 110), got {depth} ({spec})")
    return specs


def given_checkpoints(args: argparse.Namespace, specs: list[str]) -> dict[str, str]:
    """MODEL → checkpoint from ``--ckpt MODEL=PATH`` (and ``--ckpt-skip``/``--ckpt-noskip`` for the ResNet pair of
    ``--depth``); one error line for a model that is not compared or a malformed entry."""
    pairs = [item.partition("=")[::2] for item in args.ckpt]
    if args.ckpt_skip:
        pairs.append((f"resnet{args.depth}", args.ckpt_skip))
    if args.ckpt_noskip:
        pairs.append((f"resnet{args.depth}-noskip", args.ckpt_noskip))
    given: dict[str, str] = {}
    for spec, path in pairs:
        if spec not in specs or not path:
            fail(f"--ckpt {spec}={path}: expected MODEL=PATH for one of the compared models ({' '.join(specs)})")
        given[spec] = path
    return given


def _device(accelerator: str):
    import torch

    if accelerator == "gpu" and not torch.cuda.is_available():
        fail("--accelerator gpu: no CUDA GPU is visible on this machine; use --accelerator cpu (or auto)")
    return torch.device("cuda" if accelerator != "cpu" and torch.cuda.is_available() else "cpu")


def _training_plan(args: argparse.Namespace, splits, specs: list[str], given: dict[str, str]) -> None:
    """The training phase's predicted minutes for the models to train (:func:`landscape.plan.training_seconds`),
    printed before the work; nothing when every checkpoint is given."""
    from landscape.analysis import seeded
    from landscape.models import build_model
    from landscape.models.registry import parse_spec
    from landscape.plan import training_seconds

    batch, total, todo = 128, 0.0, [s for s in specs if s not in given]
    for spec in todo:
        name, options = parse_spec(spec)
        cfg = model_config_for(name, options, args, splits)
        x, y = splits.train_x[:batch], splits.train_y[:batch]
        steps, val = math.ceil(len(splits.train_y) / batch), math.ceil(len(splits.val_y) / batch)
        net = seeded(lambda cfg=cfg: build_model(cfg))  # the caller's random streams untouched
        total += training_seconds(net, x, y, steps_per_epoch=steps, epochs=args.epochs, val_batches=val)
    if todo:
        print(f"plan: training {len(todo)} × {args.epochs} epochs ({', '.join(todo)}) on {len(splits.train_y)} "
              f"images: predicted {total / 60:.1f} min (then each analysis's plan)", flush=True)  # fmt: skip


def model_config_for(name: str, options: dict[str, Any], args: argparse.Namespace, splits) -> dict[str, Any]:
    from landscape.models.registry import model_config

    width = args.width if name.startswith("resnet") else None
    return model_config(name, splits.input_shape, splits.num_classes, width=width, **options)


def _train(args: argparse.Namespace, spec: str, folder: Path, device) -> tuple[str, float]:
    """Train ``spec`` in ``folder``: (its last checkpoint, its validation accuracy)."""
    from landscape.models.registry import parse_spec
    from landscape.models.training import TrainingStopped, TrainSettings, train_model

    name, options = parse_spec(spec)
    if name.startswith("resnet"):
        options["width"] = args.width
    settings = TrainSettings(
        out=str(folder), model=name, model_options=options, data=args.data, data_dir=args.data_dir,
        download=args.download, augment=args.augment, recipe="li2018" if args.recipe == "li2018" else None,
        epochs=args.epochs, seed=args.seed, resume=args.resume, overwrite=args.overwrite,
        accelerator="gpu" if device.type == "cuda" else "cpu", quiet=args.quiet,
    )  # fmt: skip
    try:
        summary = train_model(settings)
    except (ValueError, TrainingStopped) as exc:
        fail(str(exc), code=143 if isinstance(exc, TrainingStopped) else 2)
    acc = summary.get("val_acc")
    return summary["checkpoint"], math.nan if acc is None else float(acc)


def _load(ck: str, spec: str, args: argparse.Namespace, splits):
    """The network in ``ck``, checked to be ``spec`` (a checkpoint of another model is one error line)."""
    from landscape.models.checkpoints import CheckpointError, load_network
    from landscape.models.registry import count_parameters, describe, parse_spec

    expected = model_config_for(*parse_spec(spec), args, splits)
    try:
        net, cfg = load_network(ck, expected)
    except CheckpointError as exc:
        fail(str(exc))
    if describe(cfg) != describe(expected):
        fail(f"{ck}: is {describe(cfg)}, expected {describe(expected)} (--ckpt {spec}=...)")
    return net, describe(cfg), count_parameters(net)


def _pair_figures(results: dict[str, Any], specs: list[str], out: Path, title: str) -> None:
    """The skip/no-skip figures (surfaces and densities, per-stage spectra, convexity maps) for the first ResNet
    compared both with and without skips."""
    from landscape.report.figures import blocks_panel, convexity_panel, skip_panel

    pair = next(((s, f"{s}-noskip") for s in specs if s.startswith("resnet") and f"{s}-noskip" in specs), None)
    if pair is None:
        return
    skip, noskip = results[pair[0]], results[pair[1]]
    skip_panel(skip, noskip, out / "skip_vs_noskip.png", title)
    if skip.blocks and noskip.blocks:
        blocks_panel(skip, noskip, out / "blocks_skip_vs_noskip.png", f"{title}: Hessian spectrum per stage")
    if skip.eigen_map is not None and noskip.eigen_map is not None:
        convexity_panel(skip, noskip, out / "convexity_skip_vs_noskip.png", f"{title}: convexity maps (Li et al.)")


def _check_earlier_models(out: Path, specs: list[str]) -> None:
    """One error line where ``out`` holds model folders of an earlier compare run that this one does not compare:
    its report would sit beside their results (they hold trained checkpoints, so they are not removed)."""
    models = [d for d in out.iterdir() if (d / "checkpoints").is_dir() or (d / "analysis").is_dir()]
    earlier = sorted(d.name for d in models if d.name not in specs)
    if earlier:
        fail(f"--out {out}: it holds {', '.join(earlier)} from an earlier compare run, not in this one's models "
             f"({', '.join(specs)}); add them to --models or choose another --out")  # fmt: skip


OWNED = ("comparison.csv", "comparison.json", "comparison.png", "summary.csv", "dc_vs_analytic.png",
         "skip_vs_noskip.png", "blocks_skip_vs_noskip.png", "convexity_skip_vs_noskip.png")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import torch

    from landscape.analysis import SUMMARY_COLUMNS, analyze_model, summary_row
    from landscape.files import atomic_write_json
    from landscape.report.comparison import COMPARISON_COLUMNS, comparison_figure, comparison_row, format_comparison
    from landscape.report.figures import dc_vs_analytic
    from landscape.report.writing import clear_stale, write_analysis, write_summary
    from landscape.sampling.sampler import SamplingCache

    specs = model_specs(args)
    given = given_checkpoints(args, specs)
    opts, device = options_from(args), _device(args.accelerator)
    out = output_folder(args.out)
    _check_earlier_models(out, specs)
    clear_stale([out / f for f in OWNED])
    splits, data = load_eval_data(args)
    data = data.to(device)
    _training_plan(args, splits, specs, given)
    t0 = time.perf_counter()
    rows, summary, results = [], [], {}
    for spec in specs:
        ck, acc = (given[spec], math.nan) if spec in given else _train(args, spec, out / spec, device)
        net, name, n_params = _load(ck, spec, args, splits)
        net = net.to(device)
        try:
            cache = SamplingCache()  # the calibration's fused graph is the analysis's
            o, d, plan, start = planned(net, data, opts, spec, args.budget, cache=cache)
            result = analyze_model(net, d, options=o, progress=not args.quiet, label=spec, sampling_cache=cache)
            report_time(result, plan, start, spec)
            write_analysis(result, out / spec / "analysis", spec, html=args.html, vtk=args.vtk)
        except (ValueError, RuntimeError, ArithmeticError) as exc:
            fail(f"{ck}: {exc}")
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        rows.append(comparison_row(spec, result, parameters=n_params, val_acc=acc, checkpoint=str(ck)))
        summary.append(summary_row(str(ck), name, result))
        results[spec] = result
    title = f"{', '.join(specs)} on {args.data}"
    write_summary(out / "comparison.csv", rows, COMPARISON_COLUMNS)
    write_summary(out / "summary.csv", summary, SUMMARY_COLUMNS)
    comparison_figure(results, rows, out / "comparison.png", title)
    _pair_figures(results, specs, out, f"ResNet on {args.data}")
    if opts.curvature:
        dc_vs_analytic(summary, out / "dc_vs_analytic.png")
    atomic_write_json(out / "comparison.json", {k: r.to_dict() for k, r in results.items()})
    print("\n" + format_comparison(rows))
    for label, r in results.items():
        for warning in r.warnings:
            print(f"{label}: warning: {warning}")
    print(f"\nwrote {out / 'comparison.png'}, {out / 'comparison.csv'} ({time.perf_counter() - t0:.0f} s)")
    return 0
