"""``landscape train``: train any architecture with Lightning; writes checkpoints and a metrics CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_data_arguments,
    add_distributed_arguments,
    add_model_arguments,
    fail,
    model_options,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
)

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
    o.add_argument("--optimizer", choices=["sgd", "adam"], default=None, help="default adam")
    o.add_argument("--lr", type=positive_float, default=None, help="default 1e-3 (adam) / 0.1 (sgd)")
    o.add_argument("--momentum", type=nonneg_float, default=0.9)
    o.add_argument("--nesterov", action="store_true")
    o.add_argument("--weight-decay", type=nonneg_float, default=None)
    o.add_argument("--schedule", choices=["none", "step", "cosine"], default=None)
    o.add_argument("--batch-size", type=positive_int, default=None, help="default 128")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--save-every", type=positive_int, default=None, help="also keep a checkpoint every K epochs")
    p.add_argument("--out", required=True, help="output folder")
    add_distributed_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def optimisation_settings(args: argparse.Namespace) -> dict:
    """Resolve recipe + explicit flags (explicit flags win)."""
    from models.classifier import LI2018

    base = (
        dict(LI2018)
        if args.recipe == "li2018"
        else {"optimizer": "adam", "lr": None, "weight_decay": 0.0, "schedule": "none", "nesterov": False}
    )
    for key in ("optimizer", "lr", "weight_decay", "schedule"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.nesterov:
        base["nesterov"] = True
    if base["lr"] is None:
        base["lr"] = 1e-3 if base["optimizer"] == "adam" else 0.1
    base["momentum"] = args.momentum
    return base


def train(args: argparse.Namespace, extra_callbacks: list | None = None) -> dict:
    """Run training; returns a summary dict (also written to OUT/train_summary.json)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from landscape.results import atomic_write_json
    from models.classifier import Classifier
    from models.datamodule import ImageDataModule
    from models.registry import count_parameters, describe, model_config

    out = Path(args.out)
    pl.seed_everything(args.seed, workers=True, verbose=False)
    batch = args.batch_size or 128
    dm = ImageDataModule(args.data, args.data_dir, batch_size=batch, augment=args.augment, download=args.download)
    if args.download:
        dm.prepare_data()
    dm.setup()
    cfg = model_config(args.model, dm.input_shape, dm.num_classes, **model_options(args))
    opt = optimisation_settings(args)
    module = Classifier(cfg, epochs=args.epochs, **opt)
    every = (
        {
            "filename": "epoch={epoch}",
            "auto_insert_metric_name": False,
            "every_n_epochs": args.save_every,
            "save_top_k": -1,
        }
        if args.save_every
        else {"save_top_k": 0}
    )
    callbacks = [ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, **every), *(extra_callbacks or [])]
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator=args.accelerator,
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy="ddp" if args.devices * args.num_nodes > 1 else args.strategy,
        deterministic=True,
        logger=CSVLogger(save_dir=str(out), name="", version=""),
        callbacks=callbacks,
        enable_progress_bar=not args.quiet,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    trainer.fit(module, datamodule=dm)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    summary = {
        "model": describe(cfg),
        "model_cfg": cfg,
        "parameters": count_parameters(module.model),
        "data": args.data,
        "data_note": dm.splits.note if dm.splits else "",
        "epochs": args.epochs,
        "seed": args.seed,
        "optimisation": opt,
        "batch_size": batch,
        "val_acc": metrics.get("val_acc"),
        "val_loss": metrics.get("val_loss"),
        "train_loss": metrics.get("train_loss_epoch"),
        "checkpoint": str(out / "checkpoints" / "last.ckpt"),
    }
    summary["rank_zero"] = trainer.is_global_zero
    if trainer.is_global_zero:
        atomic_write_json(out / "train_summary.json", {k: v for k, v in summary.items() if k != "rank_zero"})
    return summary


def run(args: argparse.Namespace) -> int:
    from landscape.data import DataError

    try:
        s = train(args)
    except (DataError, ValueError) as exc:
        fail(str(exc))
    if not s["rank_zero"]:
        return 0
    print(
        f"{s['model']} ({s['parameters']:,} parameters) on {s['data']}: val_acc {s['val_acc']:.4f}, "
        f"val_loss {s['val_loss']:.4f} after {s['epochs']} epochs; checkpoint {s['checkpoint']}"
    )
    return 0
