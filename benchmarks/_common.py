"""Shared set-up for the benchmark scripts (run from the repository root)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def mnist_10k(data_dir: Path = SHARED_MNIST):
    """All 10,000 images of the shared MNIST test split (normalised), as one evaluation subset."""
    import torch

    from landscape.data import load_mnist
    from landscape.evaluation import evaluation_subset

    s = load_mnist(data_dir)
    x, y = torch.cat([s.train_x, s.val_x]), torch.cat([s.train_y, s.val_y])
    return evaluation_subset(x, y, None, source="mnist:all")


def best_time(fn, repeat: int = 3) -> float:
    """Minimum wall time of ``repeat`` calls (noisy machines: the minimum is the stable statistic)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
