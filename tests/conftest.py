from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (SHARED_MNIST / "MNIST" / "raw").is_dir():
        pytest.skip("../shared/data/mnist is not present")
    return SHARED_MNIST
