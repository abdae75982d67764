"""How close the plan's predicted time is to the measured time (issue 22's target: within 30 % for ``analyze`` and
``compare`` on MLP, ConvNet and ResNet-20), on the real MNIST split in ``../shared/data/mnist``.

Trains each net for one epoch (``landscape train``), then runs ``landscape analyze`` on it (default options; the
ResNet-20 row on 256 evaluation images so that the benchmark stays short) and ``landscape compare --depth 20
--epochs 1`` (256 images, 100 samples, an 11 × 11 grid), each as its own process, and reads the prediction and the
measured time from what they wrote: for ``analyze`` the analysis's ``timings_s`` (prediction with the zooms it
drew, against the time from the plan to the end of the analysis), for ``compare`` the printed training prediction
plus both analyses' against the command's wall time after its data is loaded. The ratio is measured/predicted. The
machine's load is printed before and after; ``--busy`` runs it with one busy-loop process per core beside it.

Usage: python benchmarks/plan_accuracy.py [--busy] [--skip-compare] [--sampling-precision bfloat16]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED_MNIST

CLI = [sys.executable, "-m", "landscape.cli.cli"]
DATA = ["--data", "mnist", "--data-dir", str(SHARED_MNIST)]


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _run(args: list[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    if done.returncode:
        sys.exit(f"{' '.join(args[:2])} failed:\n{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - t0


def _predicted(timings: dict, n_zoom: float) -> float:
    return timings["plan_predicted"] + n_zoom * timings["plan_zoom_each"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--busy", action="store_true", help="one busy-loop process per core beside the runs")
    p.add_argument("--skip-compare", action="store_true")
    p.add_argument("--sampling-precision", default="float32", choices=["float32", "bfloat16"],
                   help="the analyses' sampling precision (the plan times the one chosen)")  # fmt: skip
    args = p.parse_args()
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(os.cpu_count() or 1)] if args.busy else []
    for s in spinners:
        s.start()
    print(f"load before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; busy processes: {len(spinners)}; "
          f"sampling precision {args.sampling_precision}")  # fmt: skip
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for model, extra in (("mlp", []), ("convnet", []), ("resnet20", ["--n-eval", "256"])):
                _run(["train", "--model", model, *DATA, "--epochs", "1", "--out", f"{tmp}/{model}", "--quiet"])
                precision = ["--sampling-precision", args.sampling_precision]
                out, _ = _run(["analyze", f"{tmp}/{model}/checkpoints/last.ckpt", *DATA, *extra, *precision,
                               "--out", f"{tmp}/a_{model}", "--quiet"])  # fmt: skip
                res = json.loads(Path(f"{tmp}/a_{model}/last/results.json").read_text())
                t, nz = res["timings_s"], res["scalars"].get("n_zoom", 0)
                print("\n".join(ln for ln in out.splitlines() if ln.startswith("  ")))  # the plan's phases
                print("  measured: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items() if not k.startswith("plan"))
                      + f"; {res['scalars'].get('n_hvp', 0):.0f} HVPs")  # fmt: skip
                rows.append((f"analyze {model}", t["measured"], _predicted(t, nz)))
                print(f"{rows[-1][0]:<28} measured {t['measured']:7.1f} s  predicted {rows[-1][2]:7.1f} s "
                      f"({nz:.0f} zooms)  ratio {t['measured'] / rows[-1][2]:.2f}", flush=True)  # fmt: skip
            if not args.skip_compare:
                out, _ = _run(["compare", "--depth", "20", *DATA, "--epochs", "1", "--n-eval", "256", "--samples",
                               "100", "--grid", "11", "--out", f"{tmp}/cmp", "--quiet"])  # fmt: skip
                train = float(re.search(r"plan: training .* predicted ([0-9.]+) min", out).group(1)) * 60
                res = json.loads(Path(f"{tmp}/cmp/comparison.json").read_text())
                pred = train + sum(_predicted(r["timings_s"], r["scalars"].get("n_zoom", 0)) for r in res.values())
                took = float(re.search(r"comparison.csv \(([0-9]+) s\)", out).group(1))
                rows.append(("compare resnet20 (±skip)", took, pred))
                print(f"{rows[-1][0]:<28} measured {took:7.1f} s  predicted {pred:7.1f} s (training "
                      f"{train:.0f} s)  ratio {took / pred:.2f}", flush=True)  # fmt: skip
    finally:
        stop.set()
        for s in spinners:
            s.join()
    print(f"load after: {os.getloadavg()[0]:.2f}")
    worst = max(abs(m / p - 1) for _, m, p in rows)
    print(f"worst |measured/predicted − 1| = {worst:.2f} (goal ≤ 0.30): {'PASS' if worst <= 0.3 else 'FAIL'}")


if __name__ == "__main__":
    main()
