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

from landscape.models.training import TrainSettings, train_model

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def measure(data_dir: str, epochs: int) -> dict:
    """Train the ConvNet on MNIST in a temporary folder; the training summary plus the seconds it took."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        s = train_model(
            TrainSettings(out=out, model="convnet", data="mnist", data_dir=data_dir, epochs=epochs, quiet=True)
        )
        s["seconds"] = time.perf_counter() - t0
    return s


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--epochs", type=int, default=15)
    a = p.parse_args(argv)
    s = measure(a.data_dir, a.epochs)
    ok = "PASS" if s["val_acc"] >= 0.97 else "FAIL"
    print(
        f"convnet on MNIST ({s['data_note']}): val_acc {s['val_acc']:.4f} (goal ≥ 0.97: {ok}), "
        f"{s['parameters']:,} parameters, {a.epochs} epochs in {s['seconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
