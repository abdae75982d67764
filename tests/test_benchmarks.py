"""Every benchmark script imports (its imports name things that exist: the README tells users to run them), and
the MNIST accuracy benchmark runs end to end for one epoch on the real MNIST test split, and the GPU benchmark runs
its steps on the CPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _load(path: Path):
    """Import a benchmark as ``python benchmarks/NAME.py`` runs it: with its own folder first on sys.path."""
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_imports(path):
    module = _load(path)
    assert path.stem == "_common" or callable(getattr(module, "main", None)), f"{path.name} has no main()"


@pytest.mark.skipif(not MNIST.is_dir(), reason="../shared/data/mnist is not beside the repository")
def test_convnet_mnist_benchmark_trains_one_epoch(capsys):
    module = _load(next(p for p in BENCHMARKS if p.stem == "convnet_mnist"))
    module.main(["--data-dir", str(MNIST), "--epochs", "1"])
    line = capsys.readouterr().out
    assert "val_acc" in line and "goal ≥ 0.97" in line
    acc = float(line.split("val_acc ")[1].split()[0])
    assert 0.85 <= acc <= 1.0  # one epoch of the LeNet-style net on 8,000 MNIST digits: well above chance


def test_gpu_benchmark_runs_its_steps_on_the_cpu(capsys):
    """The GPU benchmark, ready for the first machine with a GPU, runs every step here on the CPU (small): sampling,
    HVP, exact field, training step and bfloat16 against the CPU baseline, then a short analysis with its phases;
    the device's answers equal the CPU's (here the same device: exactly)."""
    import warnings

    module = _load(next(p for p in BENCHMARKS if p.stem == "gpu_resnet56"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the untrained net's estimate is not resolved: a caveat, not the subject
        module.main(["--device", "cpu", "--depth", "8", "--n-eval", "32"])
    out = capsys.readouterr().out
    for line in ("per sample:", "per HVP", "per exact-field point:", "per training step", "bfloat16 sampling:",
                 "its phases: sampling", "device results equal the CPU's (1e-4): PASS"):  # fmt: skip
        assert line in out, line
