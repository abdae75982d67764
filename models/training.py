"""Training, the one path every front end takes (``landscape train``, ``compare``, ``demo``, the benchmarks):
:class:`TrainSettings` in, a seeded Lightning run with resumable checkpoints and a metrics CSV out
(:func:`train_model`)."""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class TrainingStopped(RuntimeError):
    """Training ended early (SIGTERM); ``last.ckpt`` holds the last completed epoch."""


@dataclass
class TrainSettings:
    """Everything one training run needs; the command line's flags map onto it one to one."""

    out: str
    model: str = "mlp"
    model_options: dict[str, Any] = field(default_factory=dict)
    data: str = "digits"
    data_dir: str | None = None
    download: bool = False
    augment: bool = False
    recipe: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float | None = None
    schedule: str | None = None
    batch_size: int = 128
    epochs: int = 10
    seed: int = 0
    save_every: int | None = None
    resume: bool = False
    overwrite: bool = False
    accelerator: str = "cpu"
    strategy: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    # None: torch's own setting, so that a seeded run is reproducible (the thread count changes float rounding);
    # "auto": the idle cores (landscape.threads.choose_threads), which depends on the machine's load
    threads: int | str | None = None
    quiet: bool = False


def optimisation_settings(s: TrainSettings) -> dict:
    """Resolve recipe + explicit settings (explicit settings win)."""
    from landscape.models.classifier import LI2018

    base = (
        dict(LI2018)
        if s.recipe == "li2018"
        else {"optimizer": "adam", "lr": None, "weight_decay": 0.0, "schedule": "none", "nesterov": False}
    )
    for key in ("optimizer", "lr", "weight_decay", "schedule"):
        if getattr(s, key) is not None:
            base[key] = getattr(s, key)
    if s.nesterov:
        base["nesterov"] = True
    if base["lr"] is None:
        base["lr"] = 1e-3 if base["optimizer"] == "adam" else 0.1
    base["momentum"] = s.momentum
    return base


def _resume_point(s: TrainSettings, cfg: dict, opt: dict) -> Path | None:
    """The checkpoint to continue from, or None for a fresh run; ``ValueError`` when the folder and the request
    disagree (an earlier run without --resume, --resume with nothing to resume, another architecture, no epochs
    left to train, or optimisation settings or a seed that the resumed run would not use)."""
    from landscape.models.checkpoints import CheckpointError, load_network

    last = Path(s.out) / "checkpoints" / "last.ckpt"
    if not s.resume:
        if s.overwrite:
            _remove_run(Path(s.out))
        elif last.exists():
            raise ValueError(
                f"{s.out} already holds a training run ({last}); add --resume to continue it, --overwrite to replace "
                "it, or choose a new --out"
            )
        return None
    if not last.is_file():
        raise ValueError(f"--resume: {last} does not exist; train without --resume first")
    try:
        _, saved = load_network(last)
    except CheckpointError as exc:
        raise ValueError(f"--resume: {exc}") from exc
    if saved != cfg:
        raise ValueError(f"--resume: {last} is a {saved}, not the requested {cfg}; pass the same model options")
    _check_resumable(s, last, opt)
    return last


RESUMED_SETTINGS = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule")


def _check_resumable(s: TrainSettings, last: Path, opt: dict) -> None:
    """--resume continues the saved run: the optimiser (its state is in the checkpoint), the RNG streams (restored
    from it) and its settings. A request that would be recorded without effect is refused with one line."""
    import json

    import torch

    ck = torch.load(last, map_location="cpu", weights_only=True, mmap=True)  # metadata only: tensors stay on disk
    done = int(ck.get("epoch", -1)) + 1
    if s.epochs <= done:
        raise ValueError(f"--resume: {last} has finished {done} epochs; ask for more with --epochs (> {done})")
    hp = ck.get("hyper_parameters", {})
    changed = [f"{k} {hp[k]!r} → {opt[k]!r}" for k in RESUMED_SETTINGS if k in hp and hp[k] != opt[k]]
    summary = last.parent.parent / "train_summary.json"
    if summary.is_file():
        seed = json.loads(summary.read_text()).get("seed")
        if seed is not None and seed != s.seed:
            changed.append(f"seed {seed} → {s.seed}")
    if changed:
        raise ValueError(
            f"--resume: the run in {last.parent.parent} was trained with other settings ({'; '.join(changed)}); a "
            "resumed run keeps its optimiser, schedule and RNG streams: repeat the original settings, or train anew"
        )


RUN_FILES = ("metrics.csv", "hparams.yaml", "train_summary.json")  # a run's own files at the top of --out
RUN_FOLDERS = {  # folders a run writes into, and the names inside them that are its own
    "checkpoints": ("last.ckpt", "epoch=*.ckpt", ".*.ckpt.partial"),
    "landscape": ("epoch=*", "history.csv", "history.png"),
}


def _remove_run(out: Path) -> None:
    """Delete what an earlier run wrote into ``out``: the files in :data:`RUN_FILES` and, inside the folders of
    :data:`RUN_FOLDERS`, only the names a run writes (a folder left empty goes too). Anything else (another tool's
    ``checkpoints/important.pt``, a note in ``landscape/``) stays."""
    import shutil

    for name in RUN_FILES:
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for folder, patterns in RUN_FOLDERS.items():
        base = out / folder
        if not base.is_dir() or base.is_symlink():
            continue
        for pattern in patterns:
            for path in base.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        if not any(base.iterdir()):
            base.rmdir()


def train_model(s: TrainSettings, extra_callbacks: list | None = None) -> dict:
    """Run (or resume) training; returns a summary dict, also written to OUT/train_summary.json.

    ``checkpoints/last.ckpt`` is rewritten after every epoch, so a stopped run can be resumed. Raises
    ``DataError``/``ValueError`` for bad settings and :class:`TrainingStopped` when SIGTERM ends training early.
    """
    import torch

    from landscape.callbacks.checkpoint import LastCheckpoint
    from landscape.files import atomic_write_json
    from landscape.models.classifier import Classifier
    from landscape.models.datamodule import ImageDataModule
    from landscape.models.registry import check_size, count_parameters, describe, model_config
    from landscape.threads import choose_threads, using_threads

    from .lightning_package import SIGTERMException, loggers, pl
    from .lightning_package import callbacks as pl_callbacks

    ModelCheckpoint, CSVLogger = pl_callbacks.ModelCheckpoint, loggers.CSVLogger

    out = Path(s.out)
    pl.seed_everything(s.seed, workers=True, verbose=False)
    dm = ImageDataModule(s.data, s.data_dir, batch_size=s.batch_size, augment=s.augment, download=s.download)
    if s.download:
        dm.prepare_data()
    dm.setup()
    cfg = model_config(s.model, dm.input_shape, dm.num_classes, **s.model_options)
    check_size(cfg)
    opt = optimisation_settings(s)
    resume = _resume_point(s, cfg, opt)
    module = Classifier(cfg, epochs=s.epochs, **opt)
    last = LastCheckpoint(out / "checkpoints")
    kept = (
        [
            ModelCheckpoint(
                dirpath=out / "checkpoints", filename="epoch={epoch}", auto_insert_metric_name=False,
                every_n_epochs=s.save_every, save_top_k=-1, enable_version_counter=False,
            )
        ]
        if s.save_every
        else []
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=s.epochs,
        accelerator=s.accelerator,
        devices=s.devices,
        num_nodes=s.num_nodes,
        strategy="ddp" if s.devices * s.num_nodes > 1 else s.strategy,
        deterministic=True,
        logger=CSVLogger(save_dir=str(out), name="", version=""),
        callbacks=[last, *kept, *(extra_callbacks or [])],
        enable_progress_bar=not s.quiet,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    dm.pin_memory = trainer.strategy.root_device.type == "cuda"  # batches reach a GPU by non-blocking copies
    earlier = _read_metrics(out / "metrics.csv") if resume else []
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # Lightning stops at the next batch; see below
    try:
        n = (
            torch.get_num_threads()
            if s.threads is None
            else choose_threads(None, None if s.threads == "auto" else s.threads)
        )
        with using_threads(n):
            trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
    except SIGTERMException:
        raise TrainingStopped(
            f"training stopped by SIGTERM in epoch {trainer.current_epoch}; {out / 'checkpoints' / 'last.ckpt'} "
            "holds the last completed epoch: continue with the same command and --resume"
        ) from None
    except SystemExit:  # Lightning's answer to Ctrl-C: a message, then exit(1)
        raise KeyboardInterrupt() from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if earlier and trainer.is_global_zero:  # Lightning's CSV logger starts metrics.csv afresh
            _merge_metrics(out / "metrics.csv", earlier)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    summary = {
        "model": describe(cfg),
        "model_cfg": cfg,
        "parameters": count_parameters(module.model),
        "data": s.data,
        "data_note": dm.splits.note if dm.splits else "",
        "epochs": s.epochs,
        "resumed_from": str(resume) if resume else None,
        "seed": s.seed,
        "optimisation": opt,
        "batch_size": s.batch_size,
        "val_acc": metrics.get("val_acc"),
        "val_loss": metrics.get("val_loss"),
        "train_loss": metrics.get("train_loss_epoch"),
        "checkpoint": last.last_model_path,
        "settings": asdict(s),
    }
    summary["rank_zero"] = trainer.is_global_zero
    if trainer.is_global_zero:
        atomic_write_json(out / "train_summary.json", {k: v for k, v in summary.items() if k != "rank_zero"})
    return summary


def _read_metrics(path: Path) -> list[dict[str, str]]:
    import csv

    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _merge_metrics(path: Path, earlier: list[dict[str, str]]) -> None:
    """metrics.csv = the rows of the epochs before the resume point + the rows the resumed run wrote."""
    from landscape.files import atomic_write_csv

    new = _read_metrics(path)
    first = min((int(r["epoch"]) for r in new if r.get("epoch", "").isdigit()), default=None)
    kept = [r for r in earlier if first is None or (r.get("epoch", "").isdigit() and int(r["epoch"]) < first)]
    columns = list(dict.fromkeys([c for r in kept + new for c in r]))
    atomic_write_csv(path, kept + new, columns)
