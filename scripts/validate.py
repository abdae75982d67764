"""``landscape validate``: the curvature estimators against ground truth (SPEC §8–9) and on slices of trained nets."""

from __future__ import annotations

import argparse
import time

from .common import output_folder, seed_value

DESCRIPTION = (
    "Validate the curvature estimators on surfaces with known curvature and on loss slices of trained nets; "
    "writes validation.csv, targets.csv and figures."
)
NETS = ("mlp", "convnet", "resnet8", "resnet8-noskip")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small run (about 5 min on 2 cores)")
    p.add_argument("--out", default="runs/validate", help="output folder")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (0..2^32-1)")
    p.add_argument("--no-sweep", action="store_true", help="skip the sweeps that chose the defaults")
    p.add_argument("--no-nets", action="store_true", help="skip the trained-net slices (no training)")


def train_digits(name: str, seed: int, epochs: int = 30):
    """A digits classifier trained by a plain seeded Adam loop (lr 1e-3, batch 64) on one thread, returned in eval
    mode: one thread makes every reduction's order the same on any machine and load, so the validation table comes
    out the same elsewhere (the machine's default thread count changed the trained weights, and the table)."""
    from landscape.threads import using_threads

    with using_threads(1):
        return _train_digits(name, seed, epochs)


def _train_digits(name: str, seed: int, epochs: int):
    import torch
    from torch import nn

    from landscape.data import load_digits_splits
    from landscape.models import build_model, model_config

    s = load_digits_splits()
    if name.startswith("resnet8"):
        cfg = model_config("resnet", s.input_shape, s.num_classes, depth=8, skip=not name.endswith("noskip"))
    else:
        cfg = model_config(name, s.input_shape, s.num_classes)
    torch.manual_seed(seed)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(s.train_x), generator=gen)
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(s.train_x[idx]), s.train_y[idx]).backward()
            opt.step()
    return model.eval(), s


def net_plans(quick: bool, seed: int, progress) -> list:
    """MLP and ConvNet: every direction kind; ResNet-8 with and without skips: filter and saddle (mixed) slices."""
    from landscape.evaluation import evaluation_subset
    from landscape.validation.slices import NET_DIRECTIONS, NetPlan

    plans = []
    for name in NETS:
        t0 = time.perf_counter()
        model, splits = train_digits(name, seed)
        resnet = name.startswith("resnet")
        n_eval = (128 if quick else 256) if resnet else 500
        data = evaluation_subset(splits.train_x, splits.train_y, n_eval, seed=0, source="digits:train")
        if quick:
            dirs = ("filter0", "hessian-mixed")
            radii = (0.3,) if resnet else (0.1, 1.0)
            ns = (100, 300) if resnet else (100, 300, 1000)
            field_n = 300
        else:
            dirs = ("filter0", "filter1", "hessian-mixed") if resnet else NET_DIRECTIONS
            radii, ns, field_n = (0.1, 0.3, 1.0), (100, 300, 1000, 2000), 300 if resnet else 1000
        plans.append(NetPlan(name, model, data, dirs, radii, ns, field_n))
        progress(f"trained {name} on digits in {time.perf_counter() - t0:.0f}s")
    return plans


def run(args: argparse.Namespace) -> int:
    from landscape.files import atomic_write_csv
    from landscape.report.plots import estimate_vs_truth, slice_agreement
    from landscape.report.writing import clear_stale
    from landscape.validation.benchmarks import COLUMNS, Config, target_rows
    from landscape.validation.benchmarks import run as run_benchmark

    out = output_folder(args.out)
    clear_stale([out / "validation.csv", out / "targets.csv"])
    cfg = Config(seed=args.seed) if args.quick else Config.full(args.seed)
    say = lambda line: print(line, flush=True)
    t0 = time.perf_counter()
    nets = None if args.no_nets else net_plans(args.quick, args.seed, say)
    rows = run_benchmark(cfg, progress=say, do_sweep=not args.no_sweep, nets=nets)
    elapsed = time.perf_counter() - t0
    targets = target_rows(rows)
    atomic_write_csv(out / "validation.csv", rows, COLUMNS)
    atomic_write_csv(out / "targets.csv", targets, ["target", "value", "goal", "status"])
    estimate_vs_truth(cfg.scatter, out / "estimate_vs_truth.png")
    figures = [out / "estimate_vs_truth.png"]
    if cfg.slice_scatter:
        slice_agreement(cfg.slice_scatter, out / "slices.png")
        figures.append(out / "slices.png")
    print(f"\n{'target':<62}{'value':>8}{'goal':>8}  status")
    for t in targets:
        print(f"{t['target']:<62}{t['value']:>8.3f}{t['goal']:>8}  {t['status']}")
    print(
        f"\n{'quick' if args.quick else 'full'} run in {elapsed:.0f} s; wrote {out / 'validation.csv'} (every row), "
        f"{out / 'targets.csv'} and {', '.join(str(f) for f in figures)}"
    )
    return 0
