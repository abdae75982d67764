"""``last.ckpt`` after every training epoch, replaced atomically, so that a stopped run can be resumed.

Lightning's ``ModelCheckpoint(save_last=True)`` writes ``last.ckpt`` only in epochs where it also saved a top-k
checkpoint (with ``save_top_k=0``: only when training ends), and writes it in place.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from typing_extensions import override

from landscape.files import current_umask
from landscape.models.lightning_package import callbacks as pl_callbacks
from landscape.models.lightning_package import pl


class LastCheckpoint(pl_callbacks.Checkpoint):
    """Writes ``dirpath/last.ckpt`` at the end of every training epoch (after every other callback has updated its
    state: Lightning runs checkpoint callbacks last) through a temporary file and a rename, so the file is always a
    complete checkpoint of the last finished epoch.

    Its state holds the global RNG streams (torch, numpy, Python) at the end of that epoch, restored on resume:
    the next epoch's shuffling (drawn from torch's global stream) is then the one an uninterrupted run draws.
    """

    def __init__(self, dirpath: str | Path, filename: str = "last.ckpt"):
        self.path = Path(dirpath) / filename

    @property
    def last_model_path(self) -> str:
        return str(self.path)

    @override
    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "numpy": torch.from_numpy(keys.astype(np.int64)),
            "numpy_meta": [str(kind), int(pos), int(has_gauss), float(cached)],
            "python": list(_flatten(random.getstate())),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        torch.set_rng_state(state_dict["torch"])
        kind, pos, has_gauss, cached = state_dict["numpy_meta"]
        np.random.set_state((kind, state_dict["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
        version, *rest = state_dict["python"]
        random.setstate((version, tuple(rest[:-1]), rest[-1]))

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            trainer.save_checkpoint(partial, weights_only=False)  # collective: every rank calls it, rank zero writes
            if trainer.is_global_zero:
                os.chmod(partial, 0o666 & ~current_umask())
                os.replace(partial, self.path)
        except OSError as exc:  # a full or read-only disk: no partial file left, the last complete one kept
            if trainer.is_global_zero:
                partial.unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        trainer.strategy.barrier("last checkpoint")


def _flatten(state: tuple) -> list:
    """Python's ``random`` state (version, 625 ints, gauss) as one flat list of plain values."""
    version, internal, gauss = state
    return [version, *internal, gauss]
