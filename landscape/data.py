"""Datasets from disk, without Lightning: MNIST (IDX), CIFAR-10 (python batches), scikit-learn digits.

Every reader validates what it reads and raises :class:`DataError` with one line naming the file and the fix.
The fixed **evaluation subset** (SPEC §1) lives in :mod:`landscape.evaluation`.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .evaluation import DEFAULT_N_EVAL, EvalSubset, evaluation_subset

DATASETS = ("digits", "mnist", "cifar10")
NUM_CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
SPLIT_SEED = 0  # the deterministic train/val split of a test-only folder never changes


class DataError(RuntimeError):
    """A data folder or file is missing or unreadable; the message says which and what to do."""


@dataclass
class Splits:
    """Normalised float32 images (N, C, H, W) and int64 labels for the train and val splits."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    note: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.name]

    def eval_subset(self, n: int | None = None, split: str = "train", seed: int = 0) -> "EvalSubset":
        """The fixed evaluation subset (SPEC §1) of ``split``: :func:`evaluation_subset` of its tensors."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        x, y = (self.train_x, self.train_y) if split == "train" else (self.val_x, self.val_y)
        return evaluation_subset(x, y, DEFAULT_N_EVAL if n is None else n, seed=seed, source=f"{self.name}:{split}")


# ----------------------------------------------------------------------------------------------- MNIST (IDX)
_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) and check its magic number and size against its header."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc}); re-download it (--download) or replace the file") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or not 1 <= raw[3] <= 4:
        raise DataError(f"{path}: not an IDX file (bad magic number); re-download it (--download)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; re-download it (--download)")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or corrupt IDX file ({len(raw) - header} data bytes, header says {expected}); "
            "re-download it (--download)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _mnist_raw_folder(data_dir: Path) -> Path | None:
    for cand in (data_dir / "MNIST" / "raw", data_dir / "raw", data_dir):
        if _find_idx(cand, "t10k-images-idx3-ubyte") or _find_idx(cand, "train-images-idx3-ubyte"):
            return cand
    return None


def _read_mnist_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    img = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
    lab = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if img is None and lab is None:
        return None
    if img is None or lab is None:
        missing = f"{prefix}-images-idx3-ubyte" if img is None else f"{prefix}-labels-idx1-ubyte"
        raise DataError(f"{folder / missing}[.gz]: missing; re-download MNIST (--download) or restore the file")
    x, y = read_idx(img), read_idx(lab)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{img}: shapes {x.shape} / {y.shape} are not MNIST's; re-download it (--download)")
    if len(y) == 0:
        raise DataError(f"{img}: holds no images; re-download it (--download)")
    if y.min() < 0 or y.max() > 9:
        raise DataError(f"{lab}: labels outside 0..9; re-download it (--download)")
    return x, y


def _download_mnist(data_dir: Path) -> None:
    try:
        import torchvision

        torchvision.datasets.MNIST(str(data_dir), train=True, download=True)
        torchvision.datasets.MNIST(str(data_dir), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(f"MNIST download into {data_dir} failed ({exc}); check the network or copy the files") from exc


def load_mnist(data_dir: str | Path, download: bool = False) -> Splits:
    """MNIST from torchvision's folder layout (``DIR/MNIST/raw``), gzipped or not.

    With both splits: train = the 60k training images, val = the 10k test images. With only the test split
    (e.g. ``../shared/data/mnist``): a fixed 8,000 / 2,000 split of those 10k images.
    """
    data_dir = Path(data_dir)
    if download:
        _download_mnist(data_dir)
    folder = _mnist_raw_folder(data_dir)
    if folder is None:
        raise DataError(
            f"{data_dir}: no MNIST IDX files found (expected {data_dir}/MNIST/raw/t10k-images-idx3-ubyte[.gz]); "
            "download with --download or point --data-dir at a folder holding MNIST/raw"
        )
    test = _read_mnist_pair(folder, "t10k")
    train = _read_mnist_pair(folder, "train")
    norm = lambda a: ((torch.from_numpy(a.astype(np.float32) / 255.0) - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
    lab = lambda a: torch.from_numpy(a.astype(np.int64))
    if train is not None and test is not None:
        return Splits("mnist", norm(train[0]), lab(train[1]), norm(test[0]), lab(test[1]), "train 60k / val = test 10k")
    x, y = train if train is not None else test  # type: ignore[misc]
    tr, va = split_indices(len(x), 0.2)
    note = f"only one split on disk: fixed {len(tr)}/{len(va)} split (seed {SPLIT_SEED})"
    return Splits("mnist", norm(x[tr]), lab(y[tr]), norm(x[va]), lab(y[va]), note)


# ------------------------------------------------------------------------------------------- CIFAR-10 (pickle)
class _SafeUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches without executing arbitrary code: only numpy array reconstruction is allowed."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One ``cifar-10-batches-py`` file → uint8 images (N, 3, 32, 32) and int64 labels, validated."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing; download CIFAR-10 with --download or point --data-dir at its folder")
    try:
        with path.open("rb") as fh:
            d = _SafeUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"{path}: corrupt or truncated CIFAR-10 batch ({exc}); re-download it (--download)") from exc
    if not isinstance(d, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (no dict inside); re-download it (--download)")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    data, labels = d.get("data"), d.get("labels")
    if data is None or labels is None:
        raise DataError(f"{path}: not a CIFAR-10 batch (no 'data'/'labels'); re-download it (--download)")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path}: data {data.shape}/{data.dtype} is not N×3072 uint8; re-download it (--download)")
    if not len(labels):
        raise DataError(f"{path}: holds no images; re-download it (--download)")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: labels outside 0..9; re-download it (--download)")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(data_dir: str | Path, download: bool = False) -> Splits:
    """CIFAR-10 from ``DIR/cifar-10-batches-py``: train = data_batch_1..5, val = test_batch."""
    data_dir = Path(data_dir)
    if download:
        try:
            import torchvision

            torchvision.datasets.CIFAR10(str(data_dir), train=True, download=True)
        except Exception as exc:
            raise DataError(f"CIFAR-10 download into {data_dir} failed ({exc}); check the network") from exc
    folder = data_dir / "cifar-10-batches-py"
    if not folder.is_dir():
        raise DataError(
            f"{folder}: missing; download with --download or point --data-dir at the folder holding cifar-10-batches-py"
        )
    parts = [read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = read_cifar_batch(folder / "test_batch")
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    norm = lambda a: (torch.from_numpy(a.astype(np.float32) / 255.0) - mean) / std
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    return Splits("cifar10", norm(train_x), torch.from_numpy(train_y), norm(test_x), torch.from_numpy(test_y))


# ------------------------------------------------------------------------------------------------ digits (8×8)
def load_digits_splits() -> Splits:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images): the offline default. Fixed 80/20 split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    tr, va = split_indices(len(x), 0.2)
    mean, std = float(x[tr].mean()), float(x[tr].std())
    t = lambda a: torch.from_numpy((a - mean) / std).unsqueeze(1)
    note = f"fixed {len(tr)}/{len(va)} split (seed {SPLIT_SEED})"
    return Splits("digits", t(x[tr]), torch.from_numpy(y[tr]), t(x[va]), torch.from_numpy(y[va]), note)


def split_indices(n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A fixed permutation (seed :data:`SPLIT_SEED`) cut into train and val indices."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def load_splits(name: str, data_dir: str | Path | None = None, download: bool = False) -> Splits:
    """Dispatch on the dataset name (one of :data:`DATASETS`)."""
    if name == "digits":
        return load_digits_splits()
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if data_dir is None:
        raise DataError(f"--data-dir is required for {name}; point it at the dataset folder (or add --download)")
    return load_mnist(data_dir, download) if name == "mnist" else load_cifar10(data_dir, download)


# --------------------------------------------------------------------------------------------- datasets
class TensorImages(Dataset):
    """Images + labels held in memory; optional CIFAR-style augmentation (random crop with padding 4 + flip)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: bool = False):
        self.x, self.y, self.augment = x, y, augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.x[i]
        if self.augment:
            h, w = img.shape[-2:]
            padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            img = padded[:, dy : dy + h, dx : dx + w]
            if torch.rand(()) < 0.5:
                img = img.flip(-1)
        return img, self.y[i]
