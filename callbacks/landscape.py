"""Lightning callback: loss-landscape curvature and Hessian spectrum during training, without disturbing it.

Contract with the LightningModule (any module, not only ours):
- the probed network is ``pl_module.model`` if that attribute is an ``nn.Module``, else ``pl_module`` itself
  (or name another attribute with ``model_attr``);
- the loss is ``loss_fn`` if given, else ``pl_module.loss_fn(outputs, targets)`` if it exists, else
  cross-entropy; it must return the batch mean;
- the evaluation data is ``eval_data`` if given (an :class:`landscape.data.EvalSubset`, ``(x, y)`` tensors, or a
  DataLoader — its first ``n_eval`` examples; use one without shuffling or augmentation), else
  ``trainer.datamodule.eval_subset(n_eval)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader

from landscape.analysis import AnalysisOptions, AnalysisResult, analyze_model, seeded
from landscape.data import EvalSubset, evaluation_subset
from landscape.distributed import current_comm
from landscape.losses import cross_entropy

LOGGED = (
    "loss_center",
    "lambda_max",
    "lambda_min",
    "trace",
    "loss_scale",
    "dc_comparison",
    "dc_scalar",
    "dc_scalar_se",
    "dc_laziness",
    "analytic_scalar",
    "analytic_scalar_reach",
    "fd_scalar",
    "dc_sign_agrees",
)


class LandscapeCallback(pl.Callback):
    """Runs :func:`landscape.analysis.analyze_model` every ``every_n_epochs``, at ``at_epochs`` and/or at fit end.

    Logs centre loss, λmax, λmin, trace, the diffusion curvature at the centre (with its standard error), the
    exact scalar curvature of the sampled slice at the same scale and whether their signs agree to every logger,
    and writes ``sample.npz``, ``results.json`` and figures under ``trainer.log_dir/landscape/epoch=E`` (rank zero
    only). Weights, optimizer state, RNG streams, BatchNorm
    statistics and train/eval modes are left exactly as found.

    Under a distributed strategy (DDP over ``torch.distributed``) every rank takes part: the sample rows and the
    Hessian's evaluation subset are split across ranks and gathered, so rank zero writes the same files as a
    single-process run. If any rank fails, every rank raises ``landscape.distributed.RankFailure`` and no
    ``results.json`` is written for that epoch.
    """

    def __init__(
        self,
        options: AnalysisOptions | None = None,
        every_n_epochs: int | None = None,
        at_epochs: tuple[int, ...] = (),
        at_fit_end: bool = True,
        eval_data: EvalSubset | tuple[torch.Tensor, torch.Tensor] | DataLoader | None = None,
        n_eval: int = 500,
        loss_fn: Callable | None = None,
        model_attr: str | None = None,
        figures: bool = True,
        dirname: str = "landscape",
    ):
        if every_n_epochs is not None and every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be ≥ 1, got {every_n_epochs}")
        self.options = options or AnalysisOptions()
        self.options.validate()
        self.every_n_epochs, self.at_epochs, self.at_fit_end = every_n_epochs, set(at_epochs), at_fit_end
        self.eval_data, self.n_eval, self.loss_fn, self.model_attr = eval_data, n_eval, loss_fn, model_attr
        self.figures, self.dirname = figures, dirname
        self.done_epochs: list[int] = []
        self.last: AnalysisResult | None = None

    # ------------------------------------------------------------------ state (a resumed run continues)
    def state_dict(self) -> dict[str, Any]:
        return {"done_epochs": list(self.done_epochs)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.done_epochs = list(state_dict.get("done_epochs", []))

    # ------------------------------------------------------------------ hooks
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        due = epoch in self.at_epochs or (self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0)
        if due and epoch not in self.done_epochs:
            self._run(trainer, pl_module, epoch)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = max(0, trainer.current_epoch - 1)  # current_epoch is already advanced past the last epoch
        if self.at_fit_end and epoch not in self.done_epochs:
            self._run(trainer, pl_module, epoch)

    # ------------------------------------------------------------------ work
    def _network(self, pl_module: pl.LightningModule) -> torch.nn.Module:
        if self.model_attr:
            return getattr(pl_module, self.model_attr)
        inner = getattr(pl_module, "model", None)
        return inner if isinstance(inner, torch.nn.Module) else pl_module

    def _data(self, trainer: pl.Trainer, device: torch.device) -> EvalSubset:
        data = self.eval_data
        if data is None:
            dm = trainer.datamodule
            if dm is None or not hasattr(dm, "eval_subset"):
                raise ValueError("LandscapeCallback needs eval_data=(x, y) or a datamodule with eval_subset(n)")
            data = dm.eval_subset(self.n_eval)
        if isinstance(data, DataLoader):
            xs, ys, n = [], [], 0
            for x, y in data:  # the first n_eval examples, in the loader's order
                xs.append(x)
                ys.append(y)
                n += len(y)
                if n >= self.n_eval:
                    break
            data = (torch.cat(xs)[: self.n_eval], torch.cat(ys)[: self.n_eval])
        if isinstance(data, tuple):
            data = evaluation_subset(data[0], data[1], None, source="given")
        return EvalSubset(data.x.to(device), data.y.to(device), data.indices, data.source)

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
        comm = current_comm()  # the strategy's process group under DDP (every rank runs this hook)
        net = self._network(pl_module)
        loss_fn = self.loss_fn or getattr(pl_module, "loss_fn", None) or cross_entropy
        data = comm.run("preparing the evaluation data", lambda: self._data(trainer, pl_module.device))
        with torch.inference_mode(False), torch.enable_grad():
            result = seeded(lambda: analyze_model(net, data, self.options, loss_fn, comm=comm))
        # a write error on rank zero must stop every rank, not leave the others waiting in the next collective
        root = (
            Path(trainer.log_dir or trainer.default_root_dir) / self.dirname / f"epoch={epoch}"
        )  # all ranks: collective
        label = f"{type(net).__name__}, epoch {epoch}"
        comm.run("writing the landscape results", lambda: self._write(root, result, label))
        self.last = result
        self.done_epochs.append(epoch)
        metrics = {f"landscape/{k}": v for k, v in result.scalars.items() if k in LOGGED}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    @rank_zero_only
    def _write(self, root: Path, result: AnalysisResult, label: str = "") -> None:
        if self.figures:
            from landscape.report import analysis_figures

            analysis_figures(result, root, label)
        result.save(root)  # results.json last: its presence marks a complete analysis
