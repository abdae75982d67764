"""An analysis's figures in the user's loggers (issue 23): TensorBoard and anything with ``add_image``
(``add_image`` of the PNG's pixels), MLflow (``log_artifact`` of the file into the run), Weights & Biases
(``log_image``). The files stay on disk as they are; a logger that cannot take them is skipped, and a failure
is one warning, never a stopped fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from landscape.exceptions import LandscapeWarning
from landscape.models.lightning_package import rank_zero_warn


def logger_kind(logger: Any) -> str:
    """How ``logger`` takes an image: ``tensorboard``, ``mlflow``, ``wandb`` or ``none`` (duck-typed, so the same
    loggers of ``lightning.pytorch`` and ``pytorch_lightning`` are both recognised)."""
    experiment = getattr(logger, "experiment", None)
    if callable(getattr(logger, "log_image", None)):
        return "wandb"
    if experiment is not None and callable(getattr(experiment, "add_image", None)):
        return "tensorboard"
    mlflow = experiment is not None and callable(getattr(experiment, "log_artifact", None))
    if mlflow and getattr(logger, "run_id", None):
        return "mlflow"
    return "none"


def is_mlflow(logger: Any) -> bool:
    """An MLflow logger (its class has a ``run_id`` property), told from the class alone: the same answer on every
    rank and without starting a run (``logger.experiment`` does both differently per rank)."""
    return isinstance(getattr(type(logger), "run_id", None), property)


def log_figures(loggers: list[Any], folder: Path, *, step: int, epoch: int) -> int:
    """Every ``*.png`` of ``folder`` to every logger that takes images, under ``landscape/<name>`` at ``step``
    (MLflow: into ``landscape/epoch=<epoch>/`` of the run's artifacts). Returns how many images were logged."""
    figures = sorted(Path(folder).glob("*.png"))
    logged = 0
    for logger in loggers:
        kind = logger_kind(logger)
        if kind == "none" or not figures:
            continue
        try:
            for path in figures:
                tag = f"landscape/{path.stem}"
                if kind == "tensorboard":
                    import matplotlib.image as mpimg

                    pixels = mpimg.imread(path)[..., :3]  # RGBA floats in [0, 1] → RGB
                    logger.experiment.add_image(tag, pixels, global_step=step, dataformats="HWC")
                elif kind == "mlflow":
                    logger.experiment.log_artifact(logger.run_id, str(path), artifact_path=f"landscape/epoch={epoch}")
                else:
                    logger.log_image(key=tag, images=[str(path)], step=step)
                logged += 1
        except Exception as exc:  # a logger's failure must not stop the fit: one warning, the files are on disk
            rank_zero_warn(f"landscape: figures not sent to {type(logger).__name__}: {exc}", category=LandscapeWarning)
    return logged
