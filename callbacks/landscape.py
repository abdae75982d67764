"""Lightning callback: loss-landscape curvature and Hessian spectrum during training, without disturbing it.

Contract with the LightningModule (any module, not only ours):
- the probed network is ``pl_module.model`` if that attribute is an ``nn.Module``, else ``pl_module`` itself
  (or name another attribute with ``model_attr``);
- the loss is ``loss_fn`` if given, else ``pl_module.loss_fn(outputs, targets)`` if it exists, else
  cross-entropy; it must return the batch mean;
- the evaluation data is ``eval_data`` if given (an :class:`landscape.evaluation.EvalSubset`, ``(x, y)`` tensors, or a
  DataLoader of pairs or dict batches — its first ``n_eval`` examples; use one without shuffling or augmentation),
  else ``trainer.datamodule.eval_subset(n_eval)``; ``n_eval`` caps every form.

Its scalars go to every logger (``landscape/<name>``, with the epoch) and into ``trainer.callback_metrics``, so
``EarlyStopping(monitor="landscape/lambda_max")`` and ``ModelCheckpoint(monitor=..., save_on_train_epoch_end=True)``
act on them: the analysis runs in ``on_train_epoch_end``, after validation; list this callback before
``EarlyStopping`` (Lightning runs ``ModelCheckpoint`` last on its own).

The inputs are checked at ``setup`` (before the first epoch), not at the first analysis. An analysis that fails
(NaN weights after a divergence, a loss that raises) is reported and logged as ``landscape/failed`` = 1; training
goes on.
"""

from __future__ import annotations

import csv
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader
from typing_extensions import override

from landscape.analysis import (
    CURVATURE_METRICS,
    DIAGNOSTICS,
    HESSIAN_METRICS,
    AnalysisOptions,
    AnalysisResult,
    analyze_model,
    seeded,
)
from landscape.distributed import current_comm
from landscape.evaluation import DEFAULT_N_EVAL, EvalSubset, as_eval_subset
from landscape.exceptions import LandscapeWarning
from landscape.files import atomic_write_csv
from landscape.losses import cross_entropy
from landscape.models.lightning_package import SIGTERMException, pl, rank_zero_only, rank_zero_warn
from landscape.report.history import HISTORY_COLUMNS, history_row

from .figure_logging import is_mlflow, log_figures

LOGGED = (*HESSIAN_METRICS, *CURVATURE_METRICS, *DIAGNOSTICS, "radius")


class LandscapeCallback(pl.Callback):
    """Runs :func:`landscape.analysis.analyze_model` every ``every_n_epochs``, at ``at_epochs`` and/or at fit end.

    Logs centre loss, λmax, λmin, trace, the diffusion curvature at the centre (with its standard error), the
    exact scalar curvature of the sampled slice at the same scale and whether their signs agree to every logger,
    and writes ``sample.npz``, ``results.json`` and figures under ``trainer.log_dir/landscape/epoch=E`` (rank zero
    only). Weights, optimizer state, RNG streams, BatchNorm
    statistics and train/eval modes are left exactly as found.

    Under a distributed strategy (DDP over ``torch.distributed``) every rank takes part: the sample rows and the
    Hessian's evaluation subset are split across ranks and gathered, so rank zero writes the same files as a
    single-process run. If any rank fails, every rank sees the same ``landscape.distributed.RankFailure``: the epoch
    is logged as failed, no ``results.json`` is written for it, and training goes on.
    """

    def __init__(  # noqa: PLR0913
        self,
        options: AnalysisOptions | None = None,
        every_n_epochs: int | None = None,
        at_epochs: tuple[int, ...] = (),
        at_fit_end: bool = True,
        eval_data: EvalSubset | tuple[torch.Tensor, torch.Tensor] | DataLoader | None = None,
        n_eval: int = DEFAULT_N_EVAL,
        loss_fn: Callable | None = None,
        model_attr: str | None = None,
        figures: bool = True,
        dirname: str = "landscape",
        progress: bool = True,
    ):
        if every_n_epochs is not None and every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be ≥ 1, got {every_n_epochs}")
        if not isinstance(n_eval, int) or n_eval < 1:
            raise ValueError(f"n_eval must be a positive integer, got {n_eval!r}")
        self.options = options or AnalysisOptions()
        self.options.validate()
        self.every_n_epochs, self.at_epochs, self.at_fit_end = every_n_epochs, set(at_epochs), at_fit_end
        self.eval_data, self.n_eval, self.loss_fn, self.model_attr = eval_data, n_eval, loss_fn, model_attr
        self.figures, self.dirname, self.progress = figures, dirname, progress
        self.done_epochs: list[int] = []
        self.failed_epochs: list[int] = []
        self.history: list[dict[str, Any]] = []  # one row per analysis (landscape.report.history.HISTORY_COLUMNS)
        self.last: AnalysisResult | None = None
        self._subset: EvalSubset | None = None
        self._restored = False

    # ------------------------------------------------------------------ state (a resumed run continues)
    @property
    def state_key(self) -> str:
        return self._generate_state_key(every_n_epochs=self.every_n_epochs, at_epochs=sorted(self.at_epochs),
                                        dirname=self.dirname)  # fmt: skip

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "done_epochs": list(self.done_epochs),
            "failed_epochs": list(self.failed_epochs),
            "history": [dict(r) for r in self.history],
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.done_epochs = list(state_dict.get("done_epochs", []))
        self.failed_epochs = list(state_dict.get("failed_epochs", []))
        self.history = [dict(r) for r in state_dict.get("history", [])]
        self._restored = True  # the first analysis of this fit merges what the checkpoint could not hold

    # ------------------------------------------------------------------ inputs, checked before training starts
    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":  # the callback works during fitting only
            return
        if self.model_attr and not isinstance(getattr(pl_module, self.model_attr, None), torch.nn.Module):
            raise ValueError(f"LandscapeCallback: model_attr={self.model_attr!r} is not an nn.Module of the module")
        twins = [cb for cb in trainer.callbacks if isinstance(cb, LandscapeCallback) and cb is not self]
        if any(cb.dirname == self.dirname for cb in twins):  # one folder and one history.csv per callback
            raise ValueError(
                f"two LandscapeCallbacks write to the same folder {self.dirname!r}: their epoch folders and history "
                "would overwrite each other; give each its own dirname="
            )
        data = self.eval_data
        if data is None:
            dm = trainer.datamodule
            if dm is None or not hasattr(dm, "eval_subset"):
                raise ValueError(
                    "LandscapeCallback needs evaluation data: pass eval_data=(x, y) tensors or a DataLoader, or train "
                    "with a datamodule that has eval_subset(n)"
                )
            data = dm.eval_subset(self.n_eval)
        # a shuffling loader would draw from the global RNG: read it on a forked stream
        self._subset = seeded(lambda: as_eval_subset(data, self.n_eval, source="LandscapeCallback eval_data"))

    # ------------------------------------------------------------------ hooks
    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        due = epoch in self.at_epochs or (self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0)
        if due and epoch not in self.done_epochs + self.failed_epochs:
            self._run(trainer, pl_module, epoch)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = max(0, trainer.current_epoch - 1)  # current_epoch is already advanced past the last epoch
        if self.at_fit_end and epoch not in self.done_epochs + self.failed_epochs:
            self._run(trainer, pl_module, epoch)
        if self.history:  # the curvature-over-training figure, once, at the end
            from landscape.report.history import write_history

            root = self._root(trainer)  # every rank: log_dir is a broadcast under DDP
            if trainer.is_global_zero:
                try:
                    write_history(self.history, root, type(self._network(pl_module)).__name__)
                except OSError as exc:  # a full or read-only disk must not turn a finished fit into a crash
                    rank_zero_warn(f"landscape: history figure not written: {exc}", category=LandscapeWarning)

    def _root(self, trainer: pl.Trainer) -> Path:
        """``log_dir/dirname``; call it on every rank (``trainer.log_dir`` is a collective under DDP). Where the
        first logger is MLflow's, whose ``log_dir`` is its tracking store, ``default_root_dir/dirname`` instead:
        the files stay out of the store (the figures reach the run as artifacts)."""
        log_dir = trainer.log_dir
        if trainer.loggers and is_mlflow(trainer.loggers[0]):
            log_dir = None
        return Path(log_dir or trainer.default_root_dir) / self.dirname

    # ------------------------------------------------------------------ work
    def _network(self, pl_module: pl.LightningModule) -> torch.nn.Module:
        if self.model_attr:
            return getattr(pl_module, self.model_attr)
        inner = getattr(pl_module, "model", None)
        return inner if isinstance(inner, torch.nn.Module) else pl_module

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
        """One analysis; a failure (any exception, the user's loss or data included) is reported and logged
        (``landscape/failed``), and training goes on. SIGTERM during it stops the run as it does during training
        (``SIGTERMException``, exit 143 from ``landscape train``); Ctrl-C is a ``KeyboardInterrupt`` as anywhere."""
        try:
            with _sigterm_stops_analysis():
                self._analyse(trainer, pl_module, epoch)
        except Exception as exc:  # RankFailure on every rank when one rank failed (DDP); never BaseException
            self.failed_epochs.append(epoch)
            rank_zero_warn(
                f"landscape: epoch {epoch}: analysis failed, training goes on: {exc}", category=LandscapeWarning
            )
            for logger in trainer.loggers:
                logger.log_metrics({"landscape/failed": 1.0}, step=trainer.global_step)

    def _analyse(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
        comm = current_comm()  # the strategy's process group under DDP (every rank runs this hook)
        net = self._network(pl_module)
        loss_fn = self.loss_fn or getattr(pl_module, "loss_fn", None) or cross_entropy
        if self._subset is None:  # used without a Trainer's setup (called by hand)
            self.setup(trainer, pl_module, "fit")
        if self._subset is None:
            raise RuntimeError("LandscapeCallback.setup did not prepare the evaluation data")
        data = self._subset.to(pl_module.device)
        label = f"{type(net).__name__}, epoch {epoch}"
        with torch.inference_mode(False), torch.enable_grad():
            result = seeded(lambda: analyze_model(
                net, data, options=self.options, loss_fn=loss_fn, progress=self.progress, comm=comm, label=label
            ))  # fmt: skip
        # a write error on rank zero must stop every rank, not leave the others waiting in the next collective
        root = self._root(trainer) / f"epoch={epoch}"
        if self._restored:  # a continued fit: keep the rows its checkpoint was saved before (the fit-end analysis)
            self.history = _merge_history(self.history, root.parent / "history.csv")
            self._restored = False
        row = history_row(epoch, result, trainer.global_step)
        history, loggers = [*self.history, row], list(trainer.loggers)
        comm.run("writing the landscape results", lambda: self._write(root, result, label, history, loggers, epoch))
        self.last = result
        self.done_epochs.append(epoch)
        self.history.append(row)
        metrics = {f"landscape/{k}": float(v) for k, v in result.scalars.items() if k in LOGGED}
        # where Lightning acts on them: EarlyStopping/ModelCheckpoint(monitor="landscape/lambda_max"); the values
        # are the same on every rank (the analysis gathers its rows before it computes them)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        for logger in trainer.loggers:  # against the epoch too, as Lightning's own logging does
            logger.log_metrics({**metrics, "epoch": epoch}, step=trainer.global_step)

    @rank_zero_only
    def _write(
        self, root: Path, result: AnalysisResult, label: str, history: list[dict[str, Any]], loggers: list, epoch: int
    ) -> None:
        from landscape.report.writing import write_analysis

        write_analysis(result, root, label, figures=self.figures)  # results.json last: marks a complete analysis
        atomic_write_csv(root.parent / "history.csv", sorted(history, key=lambda r: r["epoch"]), HISTORY_COLUMNS)
        if self.figures and loggers:
            log_figures(loggers, root, step=int(history[-1]["step"]), epoch=epoch)


def _merge_history(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """``rows`` and the rows of ``path`` (this callback's earlier history.csv) for epochs ``rows`` lacks: the
    analysis at the end of a fit runs after its last checkpoint was saved, so a continued fit's restored state
    misses it while the file has it."""
    if not path.is_file():
        return rows
    known = {int(r["epoch"]) for r in rows}
    merged = list(rows)
    with open(path, newline="") as fh:
        for raw in csv.DictReader(fh):
            try:
                epoch = int(raw["epoch"])
            except (KeyError, ValueError):
                continue  # not a row of ours
            if epoch in known:
                continue
            row: dict[str, Any] = {"epoch": epoch, "step": int(raw["step"]) if raw.get("step") else ""}
            for key in HISTORY_COLUMNS:
                if key not in row:
                    text = raw.get(key, "")
                    row[key] = text if key in ("checkpoint", "directions") else _number(text)
            merged.append(row)
    return sorted(merged, key=lambda r: int(r["epoch"]))


def _number(text: str | None) -> float:
    try:
        return float(text) if text else float("nan")
    except ValueError:
        return float("nan")


@contextmanager
def _sigterm_stops_analysis() -> Iterator[None]:
    """While an analysis runs, SIGTERM raises ``SIGTERMException`` at once (after the handler it replaces, e.g.
    Lightning's, has seen it): Lightning only checks for SIGTERM between training batches, so a signal during the
    end-of-fit analysis would otherwise be ignored. Signal handlers live on the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        raise SIGTERMException()

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
