"""``landscape interpolate``: loss and accuracy along the straight line between two checkpoints, and its barrier."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_data_arguments,
    add_model_arguments,
    fail,
    model_options,
    nonneg_float,
    output_folder,
    positive_int,
)

DESCRIPTION = "Loss and accuracy on the straight line between two checkpoints (linear mode connectivity)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint_a", help="α = 0")
    p.add_argument("checkpoint_b", help="α = 1 (same architecture)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--points", type=positive_int, default=25, help="evenly spaced α in [0, 1] (≥ 2)")
    p.add_argument("--extend", type=nonneg_float, default=0.0, help="also evaluate α in [−extend, 0) and (1, 1+extend]")
    from landscape.evaluation import DEFAULT_N_EVAL

    p.add_argument(
        "--n-eval", type=positive_int, default=DEFAULT_N_EVAL, help="evaluation subset size (training split)"
    )
    add_data_arguments(p)
    add_model_arguments(p)


def load_checkpoints(args: argparse.Namespace, paths: list[str]):
    """(networks, their config, the evaluation subset) for checkpoints of one architecture; one error line for a
    missing, corrupt or diverged (NaN/Inf weights) checkpoint or a mix of architectures."""
    import torch

    from landscape.models.checkpoints import CheckpointError, load_network
    from landscape.models.registry import model_config

    from .analyze import load_eval_data

    splits, data = load_eval_data(args)
    try:
        fallback = model_config(args.model, splits.input_shape, splits.num_classes, **model_options(args))
    except ValueError as exc:
        fail(str(exc))
    nets, cfgs = [], []
    for path in paths:
        try:
            net, cfg = load_network(path, fallback)
        except CheckpointError as exc:
            fail(str(exc))
        if not all(bool(torch.isfinite(p).all()) for p in net.state_dict().values() if p.is_floating_point()):
            fail(f"{path}: holds NaN or infinite weights (training diverged); use an earlier checkpoint")
        nets.append(net)
        cfgs.append(cfg)
    if any(c != cfgs[0] for c in cfgs):
        fail(f"the checkpoints hold different architectures ({cfgs[0]['arch']} …); pass checkpoints of one model")
    return nets, cfgs[0], data


def run(args: argparse.Namespace) -> int:
    from landscape.models.registry import describe
    from landscape.report.path_figures import interpolation_figure
    from landscape.report.plots import save
    from landscape.report.writing import clear_stale
    from landscape.sampling.paths import MAX_LINE_POINTS, interpolate

    if not 2 <= args.points <= MAX_LINE_POINTS or args.extend > 10:
        fail(f"need 2 ≤ --points ≤ {MAX_LINE_POINTS} and --extend ≤ 10, got {args.points} and {args.extend}")
    out = output_folder(args.out)
    clear_stale([out / f for f in ("interpolation.csv", "interpolation.json", "interpolation.png")])
    (net_a, net_b), cfg, data = load_checkpoints(args, [args.checkpoint_a, args.checkpoint_b])
    names = (Path(args.checkpoint_a).stem, Path(args.checkpoint_b).stem)
    if names[0] == names[1]:
        names = (str(args.checkpoint_a), str(args.checkpoint_b))
    path = interpolate(net_a, net_b, data, n_points=args.points, extend=args.extend, names=names)
    save(interpolation_figure(path, f"{describe(cfg)}: {names[0]} → {names[1]}"), out / "interpolation.png")
    path.save(out)  # interpolation.json last
    print(
        f"loss {path.losses[path._endpoint(0.0)]:.4g} → {path.losses[path._endpoint(1.0)]:.4g}; barrier "
        f"{path.barrier:.4g} at α = {path.barrier_alpha:.2f}; wrote {out / 'interpolation.csv'} and .png"
    )
    return 0
