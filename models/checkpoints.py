"""Load networks from checkpoints without executing code (``torch.load(..., weights_only=True)``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .registry import build_model, check_size, describe


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file, the problem and the fix."""


def load_network(path: str | Path, fallback_cfg: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Network + its config from a ``landscape train`` (Lightning) checkpoint, or from a plain ``state_dict``
    file given ``fallback_cfg`` (from ``--model`` and the data). Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, unsafe globals ...
        raise CheckpointError(f"{path}: {_load_problem(exc)}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(obj).__name__}); save a state_dict")
    if "state_dict" in obj and isinstance(obj.get("hyper_parameters"), dict) and "model_cfg" in obj["hyper_parameters"]:
        cfg = dict(obj["hyper_parameters"]["model_cfg"])
        state = {k[len("model.") :]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
        if fallback_cfg is not None and fallback_cfg.get("input_shape") != cfg.get("input_shape"):
            raise CheckpointError(
                f"{path}: trained on inputs {cfg.get('input_shape')}, but the data has "
                f"{fallback_cfg.get('input_shape')}; pass the --data it was trained on"
            )
    else:
        if fallback_cfg is None:
            raise CheckpointError(f"{path}: a plain state_dict carries no architecture; pass --model (and its options)")
        cfg = dict(fallback_cfg)
        state = obj.get("state_dict", obj)
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path}: not a state_dict of tensors; save model.state_dict()")
    try:
        check_size(cfg)  # counted on meta tensors: an absurd architecture is refused before it is allocated
        net = build_model(cfg)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad model config {cfg} ({exc}); pass --model") from exc
    missing, unexpected = _diff(net.state_dict(), state)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: does not match {describe(cfg)} (missing {len(missing)} tensors e.g. {missing[:2]}, unexpected "
            f"{len(unexpected)} e.g. {unexpected[:2]}); pass the architecture it was trained with"
        )
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        msg = str(exc).replace("\n", " ")[:200]
        raise CheckpointError(
            f"{path}: tensor shapes do not match {describe(cfg)} ({msg}); pass the right model options"
        ) from exc
    return net.eval(), cfg


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _load_problem(exc: Exception) -> str:
    """What went wrong in ``torch.load``, in our words: torch's own message runs over many lines of advice about
    ``weights_only=False`` (which would execute the file's code) with terminal colour codes."""
    text = _ANSI.sub("", str(exc))
    culprit = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln), "")
    if "Unsupported global" in culprit:
        # only the name: torch's sentence goes on to advise allow-listing it, which would run the file's code
        name = _GLOBAL.search(culprit)
        detail = f" (it refers to {name.group(1)})" if name else ""
        return (
            f"holds objects other than tensors and plain containers{detail}; it is not loaded, because loading it "
            "could run code. Re-save the weights with torch.save(model.state_dict(), path)"
        )
    first = culprit or next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"corrupt or truncated checkpoint ({first.rstrip('.')}); re-save or re-train it"


def _diff(expected: dict, got: dict) -> tuple[list[str], list[str]]:
    return sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
