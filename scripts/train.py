"""``landscape train``: train any architecture with Lightning; writes checkpoints and a metrics CSV.

The command line over :func:`landscape.models.training.train_model`, the one training path (``train``, ``compare``,
``demo`` and the benchmarks all call it with a :class:`landscape.models.training.TrainSettings`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .common import (
    add_data_arguments,
    add_distributed_arguments,
    add_model_arguments,
    check_devices,
    fail,
    model_options,
    nonneg_float,
    output_folder,
    positive_float,
    positive_int,
    seed_value,
    threads_value,
)

if TYPE_CHECKING:
    from landscape.models.training import TrainSettings

DESCRIPTION = "Train a classifier (deterministic on CPU given --seed); writes checkpoints and metrics.csv to --out."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    add_data_arguments(p)
    p.add_argument("--augment", action="store_true", help="random crop + flip on training images (CIFAR-10)")
    o = p.add_argument_group("optimisation")
    o.add_argument(
        "--recipe",
        choices=["li2018"],
        default=None,
        help="li2018: SGD Nesterov 0.9, lr 0.1, wd 5e-4, batch 128, step schedule",
    )
    o.add_argument("--optimizer", choices=["sgd", "adam"], default=None, help="optimiser (None: adam)")
    o.add_argument("--lr", type=positive_float, default=None, help="learning rate (None: 1e-3 adam, 0.1 sgd)")
    o.add_argument("--momentum", type=nonneg_float, default=0.9, help="SGD momentum")
    o.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    o.add_argument("--weight-decay", type=nonneg_float, default=None, help="weight decay (None: 0, li2018: 5e-4)")
    o.add_argument("--schedule", choices=["none", "step", "cosine"], default=None, help="lr schedule (None: none)")
    o.add_argument("--batch-size", type=positive_int, default=128, help="training batch size")
    p.add_argument("--epochs", type=positive_int, default=10, help="total epochs (with --resume: the new total)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (0..2^32-1)")
    p.add_argument("--save-every", type=positive_int, default=None, help="also keep a checkpoint every K epochs")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints/last.ckpt")
    g.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out (its files only)")
    p.add_argument("--out", required=True, help="output folder")
    add_distributed_arguments(p)
    p.add_argument(
        "--threads",
        type=lambda text: "auto" if text == "auto" else threads_value(text),
        default=None,
        metavar="auto|N",
        help="torch CPU threads (None: torch's default, reproducible; auto: the idle cores, load-dependent)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def settings_from(args: argparse.Namespace) -> TrainSettings:
    from landscape.models.training import TrainSettings

    names = set(TrainSettings.__dataclass_fields__) - {"model_options"}
    return TrainSettings(model_options=model_options(args), **{k: getattr(args, k) for k in names})


def run(args: argparse.Namespace) -> int:
    from landscape.data import DataError
    from landscape.models import lightning_package  # noqa: F401  (a bad LANDSCAPE_LIGHTNING fails before any file)
    from landscape.models.training import TrainingStopped, train_model

    check_devices(args)
    output_folder(args.out)
    try:
        s = train_model(settings_from(args))
    except (DataError, ValueError, TrainingStopped) as exc:
        fail(str(exc), code=143 if isinstance(exc, TrainingStopped) else 2)
    if not s["rank_zero"]:
        return 0
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    print(
        f"{s['model']} ({s['parameters']:,} parameters) on {s['data']}: val_acc {fmt(s['val_acc'])}, "
        f"val_loss {fmt(s['val_loss'])} after {s['epochs']} epochs; checkpoint {s['checkpoint']}"
    )
    return 0
