"""A real Lightning DDP run with the landscape callback, launched by the distributed tests as
``python -m tests.ddp_fit OUT [--devices N] [--fail PHASE]`` (Lightning starts the other ranks itself).

Every file write goes through ``landscape.files.atomic_write_bytes``; this script logs each one with the writing
rank to ``OUT/writes-rank{R}.txt`` so the test can check that rank zero alone wrote artifacts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytorch_lightning as pl
import torch

import landscape.files as files
from landscape.analysis import AnalysisOptions
from landscape.callbacks.landscape import LandscapeCallback
from landscape.models.classifier import Classifier
from landscape.models.datamodule import ImageDataModule
from landscape.models.registry import model_config

OPTIONS = AnalysisOptions(n_samples=60, grid_points=5, trace_samples=5, top_k=2, density_starts=1, density_steps=10)
N_EVAL = 150
EPOCHS = 2


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--fail", choices=["sampling", "hessian"], default=None)
    p.add_argument("--no-callback", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    original = files.atomic_write_bytes

    def logged(path, data):
        with open(
            out / f"writes-rank{torch.distributed.get_rank() if torch.distributed.is_initialized() else 0}.txt", "a"
        ) as fh:
            fh.write(f"{path}\n")
        original(path, data)

    files.atomic_write_bytes = logged

    loss_fn = None
    if args.fail:
        from tests.dist_helpers import failing_loss

        loss_fn = failing_loss(1, args.fail)
    pl.seed_everything(0, verbose=False)
    dm = ImageDataModule("digits", batch_size=64)
    module = Classifier(model_config("mlp", dm.input_shape, dm.num_classes), optimizer="adam", lr=1e-2, epochs=EPOCHS)
    cb = LandscapeCallback(OPTIONS, every_n_epochs=1, n_eval=N_EVAL, loss_fn=loss_fn)  # mid-training too
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=EPOCHS,
        callbacks=[] if args.no_callback else [cb],
        logger=pl.loggers.CSVLogger(out, name="run"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    if trainer.is_global_zero:
        torch.save(module.model.state_dict(), out / "final.pt")


if __name__ == "__main__":
    main()
