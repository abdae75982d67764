"""Helpers shared by the command-line entry points: argument types and the one-line error contract."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class UsageError(RuntimeError):
    """Bad user input; the message is printed as one line and the command exits with status 2."""


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"landscape: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number ≥ 0, got {text}")
    return value


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
