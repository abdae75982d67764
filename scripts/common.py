"""Helpers shared by the command-line entry points: argument types and the one-line error contract."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

SEED_MAX = 2**32 - 1  # numpy's and Lightning's seed range
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(text: str) -> str:
    """``text`` without terminal colour codes, on one line (tabs and newlines become spaces)."""
    return " ".join(_ANSI.sub("", text).split())


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"landscape: error: {one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def error_line(message: str) -> None:
    """One error line on stderr for a failure the command survives (a bad checkpoint among several)."""
    print(f"landscape: error: {one_line(message)}", file=sys.stderr, flush=True)


def write_error(exc: OSError, target: str | Path | None = None) -> str:
    """A failed write in words: what could not be written (the file, else ``target``) and why, and the fix (disk
    full, quota, read-only)."""
    where = exc.filename or target
    what = f" {where}" if where else ""
    return f"could not write{what}: {exc.strerror or exc}; free some space or choose another --out"


def output_folder(text: str) -> Path:
    """--out: a folder that exists or can be created, and can be written to; one error line otherwise."""
    path = Path(text)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                fail(f"--out {text}: {parent} is a file, not a folder; choose another --out")
            if not os.access(parent, os.W_OK | os.X_OK):
                fail(f"--out {text}: {parent} is not writable (read-only disk or no permission); choose another --out")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out {text}: cannot create the folder ({exc.strerror}); choose another --out")
    _lock(path, text)
    return path


LOCK_NAME = ".landscape.lock"  # in every --out while a command writes there: one writer per folder
_HELD: dict[Path, int] = {}  # this process's locks (a command may ask for its folder more than once)


def _lock(path: Path, text: str) -> None:
    """Hold an exclusive lock on ``path/.landscape.lock`` until :func:`release_output_locks`, which removes the file
    (a killed run leaves it unlocked: the kernel drops an flock with its process, so no stale lock remains). A second
    command into the same --out while this one runs gets one error line instead of mixing its files with ours. Only
    the launching process locks: the ranks a distributed launcher starts (RANK/LOCAL_RANK > 0) write through rank
    zero."""
    if os.environ.get("RANK", "0") != "0" or os.environ.get("LOCAL_RANK", "0") != "0":
        return
    key = path.resolve()
    if key in _HELD:
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks, one writer is then the user's to keep
        return
    lock = key / LOCK_NAME
    for _ in range(5):  # a holder may remove the file between our open and our lock: then lock the new one
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            fail(f"--out {text}: cannot create its lock file ({exc.strerror}); choose another --out")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            fail(
                f"--out {text} is being written by another landscape run; wait for it to finish or choose another --out"
            )
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            _HELD[key] = fd
            return
        os.close(fd)
    fail(f"--out {text}: its lock file keeps changing under another landscape run; choose another --out")


def release_output_locks() -> None:
    """Release every --out lock this process holds (the command has finished) and remove the lock files."""
    if not _HELD:
        return
    import fcntl

    while _HELD:
        key, fd = _HELD.popitem()
        try:
            (key / LOCK_NAME).unlink()  # while still holding it: a waiting opener then sees another inode, retries
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def threads_value(text: str) -> int | None:
    """argparse type for --threads: ``auto`` (never oversubscribe: landscape.threads.choose_threads) or 1..1024."""
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a thread count, got {text!r}") from None
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"threads must be auto or 1..1024, got {text}")
    return value


def seed_value(text: str) -> int:
    """argparse type: an integer seed in 0..2^32-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"seed must be in 0..{SEED_MAX}, got {text}")
    return value


def _number(cast, strict: bool):
    """argparse type: a finite number of type ``cast`` that is > 0 (``strict``) or ≥ 0."""
    what = ("a positive " if strict else "a non-negative ") + ("integer" if cast is int else "number")

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (strict and value == 0):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    return parse


positive_int = _number(int, strict=True)
nonneg_int = _number(int, strict=False)
positive_float = _number(float, strict=True)
nonneg_float = _number(float, strict=False)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        default="digits",
        choices=["digits", "mnist", "cifar10"],
        help="dataset: digits (embedded, offline), mnist or cifar10 (default: digits)",
    )
    g.add_argument(
        "--data-dir", default=None, help="folder holding MNIST/raw or cifar-10-batches-py (torchvision layout)"
    )
    g.add_argument("--download", action="store_true", help="download the dataset through torchvision first")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="mlp", help="mlp, convnet, resnet, resnet20/32/44/56/110, densenet, densenet121")
    g.add_argument("--widths", type=positive_int, nargs="+", default=None, help="MLP hidden widths (default: 40)")
    g.add_argument("--no-bias", action="store_true", help="MLP without biases (the 2022 paper's 784-40-10)")
    g.add_argument("--depth", type=positive_int, default=None, help="ResNet depth 6n+2 (default 20)")
    g.add_argument("--no-skip", action="store_true", help="ResNet without skip connections")
    g.add_argument("--width", type=positive_int, default=None, help="ResNet width multiplier (default 1)")
    g.add_argument("--blocks", type=positive_int, nargs="+", default=None, help="DenseNet block sizes")
    g.add_argument("--growth", type=positive_int, default=None, help="DenseNet growth rate")


def model_options(args: argparse.Namespace) -> dict:
    """The architecture options of :func:`add_model_arguments`, for :func:`landscape.models.registry.model_config`."""
    return {
        "widths": args.widths,
        "bias": False if args.no_bias else None,
        "depth": args.depth,
        "skip": False if args.no_skip else None,
        "width": args.width,
        "blocks": args.blocks,
        "growth": args.growth,
    }


def add_distributed_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("processes and machines (Lightning DDP; see README 'Across processes and machines')")
    g.add_argument("--accelerator", choices=["cpu", "gpu", "auto"], default="cpu", help="where to run")
    g.add_argument("--strategy", choices=["auto", "ddp"], default="auto", help="auto: ddp when more than one process")
    g.add_argument("--devices", type=positive_int, default=1, help="processes (devices) per machine")
    g.add_argument("--num-nodes", type=positive_int, default=1, help="machines; run the command on each one")


def check_devices(args: argparse.Namespace) -> None:
    """One error line for a device request this machine cannot meet (before any process or model is started)."""
    import torch

    if args.accelerator == "gpu" and not torch.cuda.is_available():
        fail("--accelerator gpu: no CUDA GPU is visible on this machine; use --accelerator cpu (or auto)")
    if args.accelerator in ("gpu", "auto") and torch.cuda.is_available():
        have, what = torch.cuda.device_count(), "GPUs"
    else:
        have, what = os.cpu_count() or 1, "CPU cores"
    if args.devices > have:
        fail(f"--devices {args.devices}: this machine has {have} {what}; use --devices {have} or fewer")


def _option_type(annotation: str, none: str | None):
    """argparse type for a dataclass field annotated ``int``/``float``/``str`` (``| None``: the word ``none``
    stands for None). Ranges are the dataclass's own ``validate()``'s to check."""
    base = annotation.replace(" ", "").replace("|None", "")
    cast = {"int": int, "float": float, "str": str}[base]
    what = {"int": "an integer", "float": "a number", "str": "a word"}[base]

    def parse(text: str):
        if none is not None and text == none:
            return None
        try:
            value = cast(text)
        except ValueError:
            alt = f"{none} or " if none else ""
            raise argparse.ArgumentTypeError(f"expected {alt}{what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        return value

    return parse


def add_option_arguments(group, cls) -> None:
    """One flag per field of the options dataclass ``cls``, generated from the fields: the name (``--field-name``
    or the metadata's ``flag``), the default (the dataclass's own), the type from the annotation, ``choices`` and
    ``help`` from the metadata; a boolean field that defaults to True becomes ``--no-NAME``, one that defaults to
    False ``--NAME``. Each value lands in ``args.<field name>``; :func:`options_from_args` builds ``cls`` back."""
    defaults = cls()
    for f in dataclasses.fields(cls):
        meta, default = f.metadata, getattr(defaults, f.name)
        name = meta.get("flag", f.name).replace("_", "-")
        text = meta.get("help", "").replace("%", "%%")
        if f.type == "bool":  # the flag flips the default; "%(default).0s" keeps argparse from printing it
            flag, text = (f"--no-{name}", f"skip {text}") if default else (f"--{name}", text)
            action = "store_false" if default else "store_true"
            group.add_argument(flag, dest=f.name, action=action, help=text + "%(default).0s")
            continue
        none, choices = meta.get("none"), meta.get("choices")
        metavar = f"{none}|{f.type.split('|')[0].strip().upper()}" if none else name.upper().replace("-", "_")
        group.add_argument(
            f"--{name}",
            dest=f.name,
            type=_option_type(f.type, none),
            default=none if default is None else default,
            choices=choices,
            metavar=None if choices else metavar,
            help=text,
        )


def options_from_args(cls, args: argparse.Namespace, label: str = "option"):
    """``cls`` built from the flags of :func:`add_option_arguments`; a value its ``validate()`` refuses is one
    error line naming the option."""
    try:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
    except ValueError as exc:
        fail(f"bad {label}: {exc}")
