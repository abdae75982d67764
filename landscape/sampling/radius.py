"""Automatic sampling radius: the radius at which the loss has risen by a chosen factor along the slice's
directions (loss-landscape-3d's question "how far out is the basin's wall?", answered from the loss itself)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from ..evaluation import EvalSubset
from .directions import Directions
from .sampler import sample_landscape

LOSS_FLOOR = 0.05  # below this centre loss the rise is measured against 0.05 (a near-zero loss has no scale)
R_MIN, R_MAX = 1e-4, 100.0


def auto_radius(
    model: nn.Module,
    data: EvalSubset,
    directions: Directions,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    rise: float = 2.0,
    steps: int = 8,
) -> tuple[float, dict]:
    """The radius r at which the mean loss over the 2k points θ* ± r d_j reaches L0 + (rise − 1) · max(L0,
    0.05), L0 the loss at θ*: with rise 2 the loss doubles (or rises by 0.05 at a near-zero minimum). Found by
    doubling/halving from r = 1 to a bracket, then ``steps`` bisections in log r (about 15 evaluations of 2k
    points). Returns (r, a record of the rule and the evaluations); clipped to [1e-4, 100]."""
    if not rise > 1:
        raise ValueError(f"the auto radius needs a rise factor > 1, got {rise}")
    k = directions.k
    unit = np.vstack([np.zeros(k), np.eye(k), -np.eye(k)])  # row 0: the centre (the sampler's contract)
    seen: dict[float, float] = {}
    centre: list[float] = []

    def mean_loss(r: float) -> float:
        losses = sample_landscape(model, data, directions, unit * r, loss_fn, progress=False).losses
        centre.append(float(losses[0]))
        seen[r] = float(np.mean(losses[1:])) if np.all(np.isfinite(losses[1:])) else float("inf")
        return seen[r]

    mean_loss(1.0)
    l0 = centre[0]
    if not np.isfinite(l0):
        raise ValueError("the loss at the trained point is not finite: no radius can be chosen")
    target = l0 + (rise - 1) * max(l0, LOSS_FLOOR)
    if seen[1.0] >= target:  # the wall is inside r = 1: halve until below
        lo, hi = 0.5, 1.0
        while mean_loss(lo) >= target and lo > R_MIN:
            lo, hi = lo / 2, lo
    else:  # double until above
        lo, hi = 1.0, 2.0
        while mean_loss(hi) < target and hi < R_MAX:
            lo, hi = hi, hi * 2
    reached = seen[lo] < target <= seen[hi]
    if reached:
        for _ in range(steps):
            mid = float(np.sqrt(lo * hi))
            lo, hi = (mid, hi) if mean_loss(mid) < target else (lo, mid)
    chosen = float(np.clip(hi if seen[hi] < target or reached else lo, R_MIN, R_MAX))
    record = {
        "rule": f"mean loss over ±each direction reaches L0 + {rise - 1:g}·max(L0, {LOSS_FLOOR})",
        "rise": rise,
        "loss_center": l0,
        "target": target,
        "loss_at_radius": seen.get(chosen, float("nan")),
        "reached": bool(reached),
        "evaluations": len(seen),
    }
    if not reached:  # no silent clip: say which end was hit and what it means
        record["warning"] = (
            f"--radius auto: the loss never reached {target:.4g} up to radius {R_MAX:g} (the slice is flat along these "
            f"directions to the loss's precision); the radius was clipped to {chosen:g}: pass --radius yourself"
            if chosen >= R_MAX
            else f"--radius auto: the loss is above {target:.4g} already at radius {R_MIN:g}; the radius was clipped "
            f"to {chosen:g}: pass --radius yourself or a larger --radius-rise"
        )
    return chosen, record
