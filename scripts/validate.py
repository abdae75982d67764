"""``landscape validate``: the curvature estimators against ground truth (SPEC §8–9)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import fail, nonneg_int

DESCRIPTION = "Validate the curvature estimators on surfaces with known curvature; writes validation.csv + a figure."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small run (< 3 min on 2 cores)")
    p.add_argument("--out", default="runs/validate", help="output folder (default runs/validate)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--no-sweep", action="store_true", help="skip the bandwidth × t sweep that chose the defaults")


def run(args: argparse.Namespace) -> int:
    from landscape.plots import estimate_vs_truth
    from landscape.results import atomic_write_csv
    from landscape.validation import COLUMNS, Config
    from landscape.validation import run as run_benchmark

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file; give a folder")
    cfg = Config(seed=args.seed) if args.quick else Config.full(args.seed)
    t0 = time.perf_counter()
    rows = run_benchmark(cfg, progress=lambda line: print(line, flush=True), do_sweep=not args.no_sweep)
    elapsed = time.perf_counter() - t0
    atomic_write_csv(out / "validation.csv", rows, COLUMNS)
    estimate_vs_truth(cfg.scatter, out / "estimate_vs_truth.png")
    print(f"\n{'benchmark':<34}{'estimator':<20}{'metric':<15}{'value':>8}{'anchor':>9}")
    for r in rows:
        if r["metric"] != "seconds" and not r["benchmark"].startswith("sweep"):
            anchor = f"{r['anchor']:.3f}" if r["anchor"] != "" else ""
            print(f"{r['benchmark']:<34}{r['estimator']:<20}{r['metric']:<15}{r['value']:>8.3f}{anchor:>9}")
    print(
        f"\n{'quick' if args.quick else 'full'} run in {elapsed:.0f} s; wrote {out / 'validation.csv'} and "
        f"{out / 'estimate_vs_truth.png'}"
    )
    return 0
