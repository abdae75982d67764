"""The Lightning package the toolkit's Lightning classes (``Classifier``, ``ImageDataModule``, the callbacks,
``landscape train``) derive from, so that they work with the user's Trainer whichever package it comes from:

- ``lightning.pytorch`` when the user's code imported it first (``import lightning as L``, the Lightning 2.x way),
  or when ``LANDSCAPE_LIGHTNING=lightning``;
- ``pytorch_lightning`` otherwise (or ``LANDSCAPE_LIGHTNING=pytorch_lightning``).

The two packages hold separate class hierarchies (``lightning.pytorch``'s Trainer refuses a ``pytorch_lightning``
module, and a class deriving from both fails its configuration check), so the choice is made once per process, at
the first import of a toolkit Lightning module: import ``lightning`` before the toolkit's ``models`` or
``callbacks``. :data:`NAME` says which was taken.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

CHOICES = ("lightning.pytorch", "pytorch_lightning")


def _choose() -> str:
    forced = os.environ.get("LANDSCAPE_LIGHTNING", "").strip()
    if forced:
        name = "lightning.pytorch" if forced in ("lightning", "lightning.pytorch") else forced
        if name not in CHOICES:
            raise ImportError(f"LANDSCAPE_LIGHTNING must be lightning or pytorch_lightning, got {forced!r}")
        return name
    return "lightning.pytorch" if "lightning.pytorch" in sys.modules else "pytorch_lightning"


NAME = _choose()
pl: Any = importlib.import_module(NAME)
callbacks: Any = importlib.import_module(f"{NAME}.callbacks")
loggers: Any = importlib.import_module(f"{NAME}.loggers")
_utilities: Any = importlib.import_module(f"{NAME}.utilities")
rank_zero_only = _utilities.rank_zero_only
rank_zero_warn = _utilities.rank_zero_warn
SIGTERMException: Any = importlib.import_module(f"{NAME}.utilities.exceptions").SIGTERMException
