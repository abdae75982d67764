"""``landscape analyze``: sampling + diffusion curvature + Hessian spectrum for saved checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_data_arguments,
    add_distributed_arguments,
    add_model_arguments,
    fail,
    model_options,
    nonneg_int,
    positive_float,
    positive_int,
)

DESCRIPTION = "Analyse checkpoints: loss landscape, diffusion curvature, Hessian spectrum; writes summary.csv."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="+", help="checkpoints from `landscape train`, or state_dict files (+ --model)")
    p.add_argument("--out", required=True, help="output folder")
    add_data_arguments(p)
    add_model_arguments(p)
    add_analysis_arguments(p)
    add_distributed_arguments(p)


def start_processes(args: argparse.Namespace):
    """(comm, device): one process on the CPU by default, else Lightning Fabric starts this machine's ranks (ddp:
    the same command again, with LOCAL_RANK set) and joins the process group across all machines."""
    import torch

    from landscape.distributed import Comm, current_comm

    if args.devices * args.num_nodes == 1 and args.accelerator == "cpu":
        return Comm(), torch.device("cpu")
    from lightning_fabric import Fabric

    strategy = "ddp" if args.devices * args.num_nodes > 1 else args.strategy
    try:
        fabric = Fabric(accelerator=args.accelerator, strategy=strategy, devices=args.devices, num_nodes=args.num_nodes)
    except (ValueError, RuntimeError) as exc:  # e.g. --accelerator gpu on a machine without one
        fail(f"cannot start {args.devices} process(es) on {args.accelerator}: {exc} (try --accelerator cpu)")
    fabric.launch()
    return current_comm(), fabric.device


def loss_scale(text: str) -> float | None:
    """argparse type for --loss-scale: ``auto`` (the estimator's relief rule) or a positive finite number."""
    if text == "auto":
        return None
    return positive_float(text)


def add_analysis_arguments(p: argparse.ArgumentParser) -> None:
    from landscape.analysis import DIRECTIONS, SCHEMES

    g = p.add_argument_group("analysis")
    g.add_argument("--n-eval", type=positive_int, default=1000, help="evaluation subset size (training split)")
    g.add_argument(
        "--directions",
        choices=DIRECTIONS,
        default="filter",
        help="slice directions: random filter-normalised/gaussian, or Hessian eigenvectors (top, bottom, or "
        "mixed = top and bottom of the spectrum: a saddle slice when λmin < 0); default filter",
    )
    g.add_argument("--k", type=positive_int, default=2, help="number of directions, 2..6 (default 2)")
    g.add_argument("--scheme", choices=SCHEMES, default="ball", help="sample layout (default ball)")
    g.add_argument("--samples", type=positive_int, default=300, help="sampled points (≥ 20 for k = 2; default 300)")
    g.add_argument("--radius", type=positive_float, default=1.0, help="sampling radius in u (default 1)")
    g.add_argument("--grid", type=nonneg_int, default=21, help="grid points per axis for the 2-D surface (0: none)")
    g.add_argument(
        "--loss-scale",
        type=loss_scale,
        default=None,
        metavar="auto|S",
        help="s in the loss graph (u, s·L): auto (default) = the estimator's relief rule (1 %% rise over the radius)",
    )
    g.add_argument(
        "--exact-field",
        type=positive_int,
        default=None,
        metavar="N",
        help="compute the exact slice curvature at N samples (the walk's reach first); default every sample",
    )
    g.add_argument("--jackknife", type=nonneg_int, default=10, help="subsets for the diffusion value's error (0: none)")
    g.add_argument("--top-k", type=nonneg_int, default=5)
    g.add_argument("--trace-samples", type=positive_int, default=30)
    g.add_argument("--no-hessian", action="store_true", help="skip the Hessian spectrum (λmax, λmin, trace, density)")
    g.add_argument("--seed", type=nonneg_int, default=0, help="directions' and samples' seed")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def options_from(args: argparse.Namespace):
    from landscape.analysis import AnalysisOptions

    try:
        return AnalysisOptions(
            directions=args.directions,
            k=args.k,
            scheme=args.scheme,
            n_samples=args.samples,
            radius=args.radius,
            seed=args.seed,
            grid_points=args.grid,
            loss_scale=args.loss_scale,
            exact_field=args.exact_field,
            jackknife=args.jackknife,
            top_k=args.top_k,
            trace_samples=args.trace_samples,
            hessian=not args.no_hessian,
        )
    except ValueError as exc:
        fail(str(exc))


def load_eval_data(args: argparse.Namespace):
    """(splits, fixed evaluation subset of the training split) from the data options; one error line if bad."""
    from landscape.data import DataError, evaluation_subset, load_splits

    try:
        splits = load_splits(args.data, args.data_dir, args.download)
    except DataError as exc:
        fail(str(exc))
    return splits, evaluation_subset(splits.train_x, splits.train_y, args.n_eval, seed=0, source=f"{args.data}:train")


def run(args: argparse.Namespace) -> int:
    from landscape.analysis import SUMMARY_COLUMNS, TABLE_COLUMNS, summary_row
    from landscape.distributed import RankFailure
    from landscape.report import dc_vs_analytic, format_table
    from landscape.results import atomic_write_csv
    from models.checkpoints import CheckpointError, load_network
    from models.registry import describe, model_config

    opts = options_from(args)
    splits, data = load_eval_data(args)
    try:
        fallback = model_config(args.model, splits.input_shape, splits.num_classes, **model_options(args))
    except ValueError as exc:
        fail(str(exc))
    comm, device = start_processes(args)
    data.x, data.y = data.x.to(device), data.y.to(device)
    out = Path(args.out)
    rows, failures = [], 0
    for ck in args.checkpoints:
        try:  # every rank loads; a file one machine lacks stops the member on every rank
            net, cfg = comm.run(f"loading {ck}", lambda ck=ck: load_network(ck, fallback))
        except (CheckpointError, RankFailure) as exc:
            if comm.is_zero:
                print(f"landscape: error: {exc}", flush=True)
            failures += 1
            continue
        name = (
            Path(ck).stem
            if len(args.checkpoints) == len({Path(c).stem for c in args.checkpoints})
            else str(Path(ck)).replace("/", "_")
        )
        try:
            result = _analyze_one(net.to(device), data, opts, comm, out / name, args.quiet, f"{describe(cfg)} {name}")
        except RankFailure as exc:
            fail(f"[rank {comm.rank}] {exc}")
        if comm.is_zero:
            if result.scalars["n_nonfinite"]:
                print(
                    f"{ck}: {int(result.scalars['n_nonfinite'])} samples had non-finite loss (left out); "
                    "lower --radius to stay in the finite region"
                )
            for warning in result.warnings:
                print(f"{ck}: warning: {warning}")
        rows.append(summary_row(str(ck), describe(cfg), result))
    if not comm.is_zero:
        return 2 if failures else 0
    if rows:
        atomic_write_csv(out / "summary.csv", rows, SUMMARY_COLUMNS)
        if opts.curvature:
            dc_vs_analytic(rows, out / "dc_vs_analytic.png")
        print(format_table(rows, TABLE_COLUMNS))
        print(f"wrote {out / 'summary.csv'} and one folder per checkpoint under {out}")
    return 2 if failures else 0


def _analyze_one(net, data, opts, comm, folder: Path, quiet: bool, label: str = ""):
    """Analyse on every rank; rank zero writes the figures and then the files (``results.json`` last)."""
    from landscape.analysis import analyze_model
    from landscape.report import analysis_figures

    result = analyze_model(net, data, opts, progress=not quiet, comm=comm)

    def write() -> None:
        if comm.is_zero:
            analysis_figures(result, folder, label)
            result.save(folder)

    comm.run("writing the results", write)
    return result
