"""One LightningModule for every architecture: cross-entropy, accuracy, SGD/Adam, step/cosine schedules."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from .lightning_package import pl
from .registry import build_model

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine")
# Li et al. 2018: SGD, Nesterov momentum 0.9, lr 0.1, weight decay 5e-4, batch 128, lr ×0.1 at 50/75/92 % of training
LI2018 = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "schedule": "step"}


class Classifier(pl.LightningModule):
    """Wraps the network built from ``model_cfg``.

    Landscape contract (used by the callbacks): ``self.model`` is the network whose parameters are probed and
    ``loss_fn(logits, targets)`` is the mean cross-entropy.
    """

    def __init__(
        self,
        model_cfg: dict[str, Any],
        optimizer: str = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        schedule: str = "none",
        epochs: int = 10,
    ):
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.save_hyperparameters()
        self.model = build_model(model_cfg)

    @staticmethod
    def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        on_step = stage == "train"
        self.log(
            f"{stage}_loss", loss, prog_bar=True, on_step=on_step, on_epoch=True, batch_size=len(y), sync_dist=True
        )
        self.log(f"{stage}_acc", acc, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._step(batch, "test")

    def configure_optimizers(self):
        h = self.hparams
        if h.optimizer == "sgd":
            opt = torch.optim.SGD(
                self.parameters(), lr=h.lr, momentum=h.momentum, nesterov=h.nesterov, weight_decay=h.weight_decay
            )
        else:
            opt = torch.optim.Adam(self.parameters(), lr=h.lr, weight_decay=h.weight_decay)
        if h.schedule == "none":
            return opt
        if h.schedule == "step":
            miles = sorted({max(1, round(h.epochs * f)) for f in (0.5, 0.75, 275 / 300)})
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=miles, gamma=0.1)
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, h.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
