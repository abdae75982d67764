"""``landscape trajectory``: a run's checkpoints on the PCA plane of their parameters, over the loss surface."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_data_arguments, add_model_arguments, fail, nonneg_int, output_folder, positive_int

DESCRIPTION = "Optimisation path: a run's checkpoints (≥ 3, in order) on the PCA plane of their parameters."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="+", help="checkpoints of one run, in training order (epoch=*.ckpt sorts)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--grid", type=nonneg_int, default=21, help="grid points per axis of the surface (0: none)")
    from landscape.evaluation import DEFAULT_N_EVAL

    p.add_argument(
        "--n-eval", type=positive_int, default=DEFAULT_N_EVAL, help="evaluation subset size (training split)"
    )
    add_data_arguments(p)
    add_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    from landscape.models.registry import describe
    from landscape.report.history import epoch_of
    from landscape.report.path_figures import trajectory_figure
    from landscape.report.plots import save
    from landscape.report.writing import clear_stale
    from landscape.sampling.paths import trajectory

    from .interpolate import load_checkpoints

    if len(args.checkpoints) < 3:
        fail(f"a trajectory needs at least 3 checkpoints of one run, got {len(args.checkpoints)}")
    if args.grid == 1 or args.grid > 201:
        fail(f"--grid must be 0 (no surface) or 2..201, got {args.grid}")
    paths = list(args.checkpoints)
    if all(epoch_of(p) is not None for p in paths):
        paths.sort(key=epoch_of)  # shell globs sort epoch=10 before epoch=2
    out = output_folder(args.out)
    clear_stale([out / f for f in ("trajectory.csv", "trajectory.json", "trajectory.png", "trajectory_surface.npz")])
    nets, cfg, data = load_checkpoints(args, paths)
    names = [Path(p).stem for p in paths]
    try:
        t = trajectory(nets, data, grid_points=args.grid, names=names)
    except ValueError as exc:
        fail(str(exc))
    save(trajectory_figure(t, f"{describe(cfg)}, {len(nets)} checkpoints"), out / "trajectory.png")
    t.save(out)  # trajectory.json last
    print(
        f"PC1 and PC2 hold {t.explained[0]:.1%} and {t.explained[1]:.1%} of the path's variance; largest distance "
        f"from the plane {t.residual.max():.3g}; wrote {out / 'trajectory.png'} and trajectory.csv"
    )
    return 0
