"""LightningDataModule over :mod:`landscape.data` (the readers themselves import no Lightning)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from landscape.data import Splits, TensorImages, load_splits
from landscape.evaluation import EvalSubset

from .lightning_package import pl


class ImageDataModule(pl.LightningDataModule):
    """``digits`` (embedded), ``mnist`` or ``cifar10``; train augmentation (crop+flip) only when asked;
    ``pin_memory`` for training on a GPU (:func:`landscape.models.training.train` sets it there).

    ``eval_subset(n)`` is the fixed, un-augmented evaluation subset every loss/Hessian computation uses
    (drawn from the training split: the landscape of the loss that was minimised).
    """

    def __init__(
        self,
        name: str = "digits",
        data_dir: str | Path | None = None,
        batch_size: int = 128,
        augment: bool = False,
        download: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__()
        self.name, self.data_dir, self.batch_size = name, data_dir, batch_size
        self.augment, self.download, self.num_workers = augment, download, num_workers
        self.pin_memory = pin_memory  # page-locked batches: Lightning's non-blocking copies to a GPU overlap compute
        self.splits: Splits | None = None

    def prepare_data(self) -> None:
        if self.download:
            load_splits(self.name, self.data_dir, download=True)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = load_splits(self.name, self.data_dir)

    def _splits(self) -> Splits:
        self.setup()
        if self.splits is None:  # setup() always loads them; a subclass that overrides it must too
            raise RuntimeError(f"{type(self).__name__}.setup() did not load the data splits")
        return self.splits

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self._splits().input_shape

    @property
    def num_classes(self) -> int:
        return self._splits().num_classes

    def train_dataloader(self) -> DataLoader:
        s = self._splits()
        ds = TensorImages(s.train_x, s.train_y, augment=self.augment)
        return DataLoader(
            ds, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers, pin_memory=self.pin_memory
        )

    def val_dataloader(self) -> DataLoader:
        s = self._splits()
        val = TensorImages(s.val_x, s.val_y)
        return DataLoader(val, batch_size=1024, num_workers=self.num_workers, pin_memory=self.pin_memory)

    def eval_subset(self, n: int | None = None, split: str = "train", seed: int = 0) -> EvalSubset:
        """:meth:`landscape.data.Splits.eval_subset` (n = None: the shared default size)."""
        return self._splits().eval_subset(n, split, seed)
