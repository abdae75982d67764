import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from landscape.data import (
    DataError,
    load_cifar10,
    load_digits_splits,
    load_mnist,
    load_splits,
    read_idx,
)
from landscape.evaluation import evaluation_subset


def write_idx(path, array, gz=False, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def make_mnist(folder, n=50, prefix="t10k", gz=True):
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)), gz)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", rng.integers(0, 10, n), gz)
    return raw


def make_cifar(folder, n=20):
    d = folder / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": list(rng.integers(0, 10, n))}
        (d / name).write_bytes(pickle.dumps(batch))
    return d


def test_real_mnist_test_split(mnist_dir):
    s = load_mnist(mnist_dir)
    assert s.train_x.shape == (8000, 1, 28, 28) and s.val_x.shape == (2000, 1, 28, 28)
    counts = np.bincount(np.concatenate([s.train_y.numpy(), s.val_y.numpy()]), minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(s.train_x.mean())) < 0.1  # normalised
    again = load_mnist(mnist_dir)
    assert torch.equal(again.val_x, s.val_x)  # deterministic split


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip_and_both_splits(tmp_path, gz):
    make_mnist(tmp_path, 30, "t10k", gz)
    make_mnist(tmp_path, 40, "train", gz)
    s = load_mnist(tmp_path)
    assert len(s.train_y) == 40 and len(s.val_y) == 30


def test_idx_truncated(tmp_path):
    raw = make_mnist(tmp_path, 10, gz=False)
    f = raw / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or corrupt IDX.*t10k-images|t10k-images.*truncated"):
        load_mnist(tmp_path)


def test_idx_bad_magic(tmp_path):
    raw = make_mnist(tmp_path, 10, gz=False)
    f = raw / "t10k-labels-idx1-ubyte"
    f.write_bytes(b"\x12\x34" + f.read_bytes()[2:])
    with pytest.raises(DataError, match="bad magic number"):
        load_mnist(tmp_path)


def test_idx_corrupt_gzip(tmp_path):
    raw = make_mnist(tmp_path, 10, gz=True)
    f = raw / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:40])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)


def test_idx_missing_labels(tmp_path):
    raw = make_mnist(tmp_path, 10)
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="labels-idx1-ubyte.*missing"):
        load_mnist(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="--download or point --data-dir"):
        load_mnist(tmp_path / "nope")
    with pytest.raises(DataError, match="--data-dir is required"):
        load_splits("mnist", None)


def test_read_idx_shape(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x", a)
    assert np.array_equal(read_idx(tmp_path / "x"), a)


def test_cifar_roundtrip(tmp_path):
    make_cifar(tmp_path, 12)
    s = load_cifar10(tmp_path)
    assert s.train_x.shape == (60, 3, 32, 32) and s.val_x.shape == (12, 3, 32, 32)
    assert s.train_x.dtype == torch.float32 and s.train_y.dtype == torch.int64


def test_cifar_truncated(tmp_path):
    d = make_cifar(tmp_path, 12)
    f = d / "data_batch_3"
    f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_3: corrupt or truncated"):
        load_cifar10(tmp_path)


def test_cifar_wrong_shape_and_missing(tmp_path):
    d = make_cifar(tmp_path, 12)
    (d / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}))
    with pytest.raises(DataError, match="test_batch: data"):
        load_cifar10(tmp_path)
    (d / "data_batch_5").unlink()
    with pytest.raises(DataError, match="data_batch_5: missing"):
        load_cifar10(tmp_path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_cifar_refuses_code_in_pickle(tmp_path):
    d = make_cifar(tmp_path, 4)
    (d / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}))
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar10(tmp_path)


def test_digits_and_eval_subset():
    s = load_digits_splits()
    assert s.train_x.shape[1:] == (1, 8, 8) and len(s.train_y) + len(s.val_y) == 1797
    a = evaluation_subset(s.train_x, s.train_y, 100, seed=3)
    b = evaluation_subset(s.train_x, s.train_y, 100, seed=3)
    assert torch.equal(a.x, b.x) and len(a) == 100
    assert list(a.indices) == sorted(a.indices)
    assert sum(len(y) for _, y in a.batches(32)) == 100
    assert len(evaluation_subset(s.train_x, s.train_y, None)) == len(s.train_y)
