"""``landscape analyze``: sampling + diffusion curvature + Hessian spectrum for saved checkpoints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    add_data_arguments,
    add_distributed_arguments,
    add_model_arguments,
    add_option_arguments,
    check_devices,
    error_line,
    fail,
    model_options,
    options_from_args,
    output_folder,
    positive_float,
    positive_int,
    write_error,
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


def add_analysis_arguments(p: argparse.ArgumentParser) -> None:
    """The analysis flags: one per :class:`landscape.analysis.AnalysisOptions` field, generated from the dataclass
    (name, default, type, choices, help), plus the evaluation subset's size and the output switches."""
    from landscape.analysis import AnalysisOptions
    from landscape.evaluation import DEFAULT_N_EVAL

    g = p.add_argument_group("analysis (landscape.analysis.AnalysisOptions)")
    g.add_argument(
        "--n-eval", type=positive_int, default=DEFAULT_N_EVAL, help="evaluation subset size (training split)"
    )
    add_option_arguments(g, AnalysisOptions)
    g.add_argument("--html", action="store_true", help="also write surface.html, an interactive 3-D surface (~5 MB)")
    g.add_argument("--vtk", action="store_true", help="also write surface.vtu and samples.vtu for ParaView (k = 2)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument(
        "--budget",
        type=positive_float,
        default=None,
        metavar="MINUTES",
        help="fit each analysis into this many minutes: lowers samples, zooms, the evaluation subset and the "
        "trace's probes, in that order, by the plan's prediction (printed before the work, with what it costs)",
    )


def options_from(args: argparse.Namespace):
    from landscape.analysis import AnalysisOptions

    return options_from_args(AnalysisOptions, args, "analysis option")


def load_eval_data(args: argparse.Namespace):
    """(splits, fixed evaluation subset of the training split) from the data options; one error line if bad."""
    from landscape.data import DataError, load_splits

    try:
        splits = load_splits(args.data, args.data_dir, args.download)
    except DataError as exc:
        fail(str(exc))
    return splits, splits.eval_subset(args.n_eval)


RESERVED = ("summary.csv", "dc_vs_analytic.png", "history.csv", "history.png", ".landscape.lock")


def result_names(checkpoints: list[str]) -> list[str]:
    """One distinct folder name per checkpoint: the file's stem when the stems differ, else its path below the
    folders every checkpoint shares (``mlp_checkpoints_last``), and a numeric suffix wherever two names would still
    meet (``a_b/x`` and ``a/b/x``)."""
    names = [Path(c).stem for c in checkpoints]
    if len(set(names)) < len(names):
        parts = [Path(c).resolve().with_suffix("").parts for c in checkpoints]
        common = 0
        while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
            common += 1
        names = ["_".join(p[common:]) for p in parts]
    names = [n.lstrip(".") or "checkpoint" for n in names]
    taken: set[str] = set(
        RESERVED
    )  # the run's own top-level files: a checkpoint named summary.csv.ckpt gets summary.csv_
    unique = []
    for i, name in enumerate(names):
        if names.count(name) > 1:
            name = f"{name}-{names[:i].count(name) + 1}"
        while name in taken:
            name += "_"
        taken.add(name)
        unique.append(name)
    return unique


def run(args: argparse.Namespace) -> int:  # noqa: C901
    from landscape.analysis import SUMMARY_COLUMNS, TABLE_COLUMNS, summary_row
    from landscape.distributed import RankFailure
    from landscape.models.checkpoints import CheckpointError, load_network
    from landscape.models.registry import describe, model_config
    from landscape.report.figures import dc_vs_analytic, format_table
    from landscape.report.history import epoch_of, history_row, write_history
    from landscape.report.writing import clear_stale, write_summary

    opts = options_from(args)
    if args.html and not (opts.grid_points and opts.k == 2):  # no silent outputs: the surface is what --html draws
        fail(
            "--html draws the 2-D loss surface: it needs --grid ≥ 3 and --k 2 "
            f"(got --grid {opts.grid_points}, --k {opts.k})"
        )
    if args.vtk and opts.k != 2:
        fail(f"--vtk writes the 2-D surface and the slice's samples: it needs --k 2 (got --k {opts.k})")
    check_devices(args)
    out = output_folder(args.out)
    splits, data = load_eval_data(args)
    try:
        fallback = model_config(args.model, splits.input_shape, splits.num_classes, **model_options(args))
    except ValueError as exc:
        fail(str(exc))
    comm, device = start_processes(args)
    data = data.to(device)
    if comm.is_zero:  # an earlier run's summary must not stand next to this run's folders
        clear_stale([out / f for f in RESERVED[:4]])
    rows, failures, history, runs = [], 0, [], set()
    for ck, name in zip(args.checkpoints, result_names(args.checkpoints)):
        try:  # every rank loads; a file one machine lacks stops the member on every rank
            net, cfg = comm.run(f"loading {ck}", lambda ck=ck: load_network(ck, fallback))
            label = f"{describe(cfg)} {name}"
            result = _analyze_one(net.to(device), data, opts, comm, out / name, label, args)
        except (CheckpointError, RankFailure, ValueError, RuntimeError, ArithmeticError) as exc:
            if comm.is_zero:
                error_line(f"{ck}: {exc}" if str(ck) not in str(exc) else str(exc))
            failures += 1
            continue
        except OSError as exc:  # its folder could not be written (disk full, read-only): the others go on
            error_line(f"{ck}: {write_error(exc, out / name)}")
            failures += 1
            continue
        if comm.is_zero:
            if result.scalars["n_nonfinite"]:
                print(
                    f"{ck}: {int(result.scalars['n_nonfinite'])} samples had non-finite loss (left out); "
                    "lower --radius to stay in the finite region"
                )
            for warning in result.warnings:
                print(f"{ck}: warning: {warning}")
        rows.append(summary_row(str(ck), describe(cfg), result))
        if epoch_of(ck) is not None:
            history.append(history_row(epoch_of(ck), result, checkpoint=str(ck)))
            runs.add((str(Path(ck).resolve().parent), describe(cfg)))
    if not comm.is_zero:
        return 2 if failures else 0
    if rows:
        write_summary(out / "summary.csv", rows, SUMMARY_COLUMNS)
        if opts.curvature:
            dc_vs_analytic(rows, out / "dc_vs_analytic.png")
        print(format_table(rows, TABLE_COLUMNS))
        print(f"wrote {out / 'summary.csv'} and one folder per checkpoint under {out}")
    if len(history) >= 2 and len(history) == len(rows):  # a series of epoch=*.ckpt: curvature over training
        epochs = [r["epoch"] for r in history]
        if len(runs) == 1 and len(set(epochs)) == len(epochs):  # one run's folder, one architecture, each epoch once
            written = write_history(history, out, describe(cfg))
            print(f"wrote {', '.join(str(p) for p in written)} (curvature over {len(history)} epochs)")
        else:
            print(
                "no curvature-over-training history: the epoch checkpoints come from "
                + (f"{len(runs)} folders or architectures" if len(runs) > 1 else "one run with repeated epochs")
                + "; analyse one run's checkpoints at a time for it",
                file=sys.stderr,
            )
    if failures:
        error_line(f"{failures} of {len(args.checkpoints)} checkpoints could not be analysed (see the lines above)")
    return 2 if failures else 0


def planned(net, data, opts, label: str, budget: float | None, ranks: int = 1, show: bool = True, cache=None):
    """The plan before the work (:mod:`landscape.plan`), printed; with ``budget`` the options and the
    evaluation subset that fit it. Returns (options, data, plan, start time). ``cache``: the analysis's sampling
    cache (the calibration's fused graph is then the analysis's)."""
    import time

    from landscape.plan import plan_run

    opts, data, plan = plan_run(net, data, opts, budget=budget, ranks=ranks, cache=cache)
    if show:
        print("\n".join(plan.lines(label)), flush=True)
    return opts, data, plan, time.perf_counter()


def report_time(result, plan, start: float, label: str, show: bool = True) -> None:
    """The measured time beside the predicted one (also in ``results.json``'s timings)."""
    import time

    took = time.perf_counter() - start
    result.timings.update(plan_predicted=plan.seconds, plan_zoom_each=plan.zoom_seconds, measured=took)
    if show:
        zooms = int(result.scalars.get("n_zoom", 0) or 0)
        predicted = plan.seconds + zooms * plan.zoom_seconds
        print(f"{label}: took {took / 60:.1f} min; the plan predicted {predicted / 60:.1f} min with the {zooms} "
              f"zoom(s) drawn ({took / predicted:.2f}×)", flush=True)  # fmt: skip


def _shared_choice(comm, opts, data):
    """Rank zero's budgeted options and subset size on every rank (each rank's calibration timed differently)."""
    from dataclasses import replace

    import torch

    mine = [opts.n_samples, opts.zoom, len(data), opts.trace_samples, opts.density_starts]
    n, zoom, n_eval, trace, density = (int(v) for v in comm.share(torch.tensor(mine, dtype=torch.float64)))
    opts = replace(opts, n_samples=n, zoom=zoom, trace_samples=trace, density_starts=density)
    return opts, data.head(n_eval)


def _analyze_one(net, data, opts, comm, folder: Path, label: str, args: argparse.Namespace):
    """Plan, then analyse on every rank; rank zero writes the folder (figures, arrays, ``results.json`` last;
    ``--html`` and ``--vtk`` add their files)."""
    from landscape.analysis import analyze_model
    from landscape.report.writing import write_analysis
    from landscape.sampling.sampler import SamplingCache

    cache = SamplingCache()  # the calibration's fused graph is the analysis's
    opts, data, plan, start = planned(net, data, opts, label, args.budget, comm.world_size, comm.is_zero, cache)
    if comm.world_size > 1 and args.budget is not None:  # every rank runs what rank zero's timings chose
        opts, data = _shared_choice(comm, opts, data)
    result = analyze_model(
        net, data, options=opts, progress=not args.quiet, comm=comm, label=label, sampling_cache=cache
    )
    report_time(result, plan, start, label, show=comm.is_zero)

    def write() -> None:
        if comm.is_zero:
            write_analysis(result, folder, label, html=args.html, vtk=args.vtk)

    comm.run("writing the results", write)
    return result
