"""Per-block Hessian spectra (SPEC §7 restricted to a parameter block): λmax, λmin and the trace of each diagonal
block H_bb of the Hessian, the curvature seen when only that block's weights move (a ResNet stage, a DenseNet
block, an MLP layer).

The block's operator is the full Hessian-vector product of a vector that is zero outside the block, read on the
block (:class:`BlockProblem`); every number then comes from the same shared-Krylov machinery as the full spectrum
(:func:`landscape.hessian.krylov_spectrum.estimate_spectrum`). By Cauchy's interlacing theorem each block's λmax
is at most the full λmax and its λmin at least the full λmin, and the block traces add up to the full trace.

Blocks: ``"auto"`` takes the model's own ``parameter_groups()`` (name → parameter-name prefixes; this project's
ResNets give the stem, each stage and the head, DenseNets each dense block and transition) or else every
parameterised child module, containers (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``) opened; a dict
name → regular expression assigns each parameter to the first group whose pattern it matches (``re.search``), and
the parameters no pattern matches to a block named ``other``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..params import trainable
from .krylov_spectrum import estimate_spectrum, extremes_run

MAX_BLOCKS = 64  # at most this many blocks (each costs its own Lanczos run)
ZERO_FLOOR = 1e-3  # a block eigenvalue within this share of the block's largest |λ| of zero is read as zero
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class ParameterBlock:
    """A named set of positions in the flat parameter vector θ (the trainable parameters in ``named_parameters``
    order, as every Hessian-vector product in :mod:`landscape.hessian` uses them)."""

    name: str
    index: np.ndarray
    parameters: list[str]

    @property
    def n_params(self) -> int:
        return int(len(self.index))


def module_groups(model: nn.Module) -> dict[str, list[str]]:
    """Every child module that holds trainable parameters, containers opened: name → its parameter prefix."""
    groups: dict[str, list[str]] = {}

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if not any(p.requires_grad for p in child.parameters()):
                continue
            if isinstance(child, CONTAINERS):
                visit(path + ".", child)
            else:
                groups[path] = [path + "."]

    visit("", model)
    if any(p.requires_grad for p in model.parameters(recurse=False)):
        groups["root"] = [n for n, p in model.named_parameters(recurse=False) if p.requires_grad]
    return groups


def parameter_blocks(model: nn.Module, groups: str | dict[str, str] = "auto") -> list[ParameterBlock]:
    """The blocks of ``model``'s trainable parameters (module docstring). Every parameter lies in exactly one block;
    a named group that matches nothing, or more than :data:`MAX_BLOCKS` blocks, is a ``ValueError``."""
    named = trainable(model)
    sizes = [p.numel() for _, p in named]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owner: dict[str, str] = {}
    if groups == "auto":
        fn = getattr(model, "parameter_groups", None)
        spec = fn() if callable(fn) else module_groups(model)
        for block, prefixes in spec.items():
            for name, _ in named:
                if name not in owner and any(name == p or name.startswith(p) for p in prefixes):
                    owner[name] = block
        order = list(spec)
    elif isinstance(groups, dict):
        patterns = {block: re.compile(rx) for block, rx in groups.items()}
        for name, _ in named:
            owner[name] = next((b for b, rx in patterns.items() if rx.search(name)), "other")
        order = list(patterns)
    else:
        raise ValueError(f"Hessian blocks must be 'auto' or a dict name → regex, got {groups!r}")
    for name, _ in named:
        owner.setdefault(name, "other")
    order += ["other"] if "other" not in order else []
    blocks = []
    for block in order:
        members = [i for i, (name, _) in enumerate(named) if owner[name] == block]
        if not members:
            if isinstance(groups, dict) and block in groups:
                raise ValueError(f"Hessian block {block!r} ({groups[block]!r}) matches no trainable parameter")
            continue
        index = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in members])
        blocks.append(ParameterBlock(block, index, [named[i][0] for i in members]))
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(f"{len(blocks)} Hessian blocks; at most {MAX_BLOCKS}: group them (a dict name → regex)")
    return blocks


class BlockProblem:
    """H_bb as a problem for :func:`estimate_spectrum`: ``hvp`` embeds a block vector in θ's space (zeros
    elsewhere), takes the full product and reads it on the block. The parent's product count and progress bar
    count every product."""

    def __init__(self, problem: Any, block: ParameterBlock):
        self.problem, self.block = problem, block
        self.index = torch.as_tensor(block.index, dtype=torch.long)
        self.num_params = block.n_params

    @property
    def n_hvp(self) -> int:
        return int(self.problem.n_hvp)

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(self.problem.num_params, dtype=torch.float64)
        full[self.index] = v.to(torch.float64).reshape(-1)
        return self.problem.hvp(full)[self.index]


@dataclass
class BlockSpectrum:
    """One block's numbers: ``lambda_max``/``lambda_min`` of H_bb (each to the Lanczos tolerance, ``converged``),
    its trace with the standard error of the probes (0 where the Krylov run spanned the block) and the products
    it took."""

    block: str
    n_params: int
    lambda_max: float
    lambda_min: float
    trace: float
    trace_se: float
    n_hvp: int
    converged: bool

    def record(self) -> dict[str, Any]:
        return asdict(self)


BLOCK_COLUMNS = ["block", "n_params", "lambda_max", "lambda_min", "trace", "trace_se", "n_hvp", "converged"]


def block_spectra(
    problem: Any,
    blocks: list[ParameterBlock],
    *,
    tol: float = 1e-4,
    trace_probes: int = 30,
    trace_rtol: float = 0.01,
    seed: int = 0,
) -> list[BlockSpectrum]:
    """λmax, λmin and the trace of every block's Hessian H_bb (module docstring), one shared-Krylov estimate each
    (:func:`estimate_spectrum` with no density). An end of H_bb within :data:`ZERO_FLOOR` × its largest |λ| of zero
    is resolved to ``tol`` × that floor, not relative to itself (exact zeros, as a classifier head has, never
    converge relatively)."""
    out = []
    for block in blocks:
        start = problem.n_hvp
        sub = BlockProblem(problem, block)
        run = extremes_run(sub, 1, 1, tol, seed, zero_floor=ZERO_FLOOR)
        est = estimate_spectrum(sub, top_k=1, tol=tol, density_starts=0, trace_probes=trace_probes,
                                trace_rtol=trace_rtol, seed=seed, run=run)  # fmt: skip
        out.append(
            BlockSpectrum(
                block=block.name,
                n_params=block.n_params,
                lambda_max=est.lambda_max,
                lambda_min=est.lambda_min,
                trace=est.trace,
                trace_se=est.trace_se,
                n_hvp=int(problem.n_hvp - start),
                converged=all(est.converged.values()),
            )
        )
    return out


def block_groups(text: str) -> str | dict[str, str]:
    """The command line's form: ``auto``, or ``name=regex;name=regex`` (each regex compiled: a bad one, a repeated
    or empty name, or more than :data:`MAX_BLOCKS` groups is a ``ValueError``)."""
    if text == "auto":
        return text
    groups: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, eq, rx = part.partition("=")
        name = name.strip()
        if not eq or not name or not rx or name in groups:
            raise ValueError(f"Hessian blocks: expected 'auto' or name=regex;... with distinct names, got {text!r}")
        try:
            re.compile(rx)
        except re.error as exc:
            raise ValueError(f"Hessian block {name!r}: bad regular expression {rx!r} ({exc})") from exc
        groups[name] = rx
    if not groups or len(groups) > MAX_BLOCKS:
        raise ValueError(f"Hessian blocks: 1..{MAX_BLOCKS} groups name=regex;..., got {text!r}")
    return groups
