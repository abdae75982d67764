"""ConvNet (LeNet-5 style) on the real MNIST test split (fixed 8k/2k split): held-out accuracy, goal ≥ 97 %.

Usage: python benchmarks/convnet_mnist.py [--data-dir ../shared/data/mnist] [--epochs 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.train import add_arguments, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
    p.add_argument("--epochs", type=int, default=15)
    a = p.parse_args()
    tp = argparse.ArgumentParser()
    add_arguments(tp)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        s = train(
            tp.parse_args(
                [
                    "--model",
                    "convnet",
                    "--data",
                    "mnist",
                    "--data-dir",
                    a.data_dir,
                    "--epochs",
                    str(a.epochs),
                    "--out",
                    out,
                    "--quiet",
                ]
            )
        )
        dt = time.perf_counter() - t0
    ok = "PASS" if s["val_acc"] >= 0.97 else "FAIL"
    print(
        f"convnet on MNIST ({s['data_note']}): val_acc {s['val_acc']:.4f} (goal ≥ 0.97: {ok}), "
        f"{s['parameters']:,} parameters, {a.epochs} epochs in {dt:.1f} s"
    )


if __name__ == "__main__":
    main()
