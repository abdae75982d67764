"""The sampled slice (SPEC §1): losses at θ* + D u with their coordinates, saved as NPZ + JSON (atomically)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_json, atomic_write_npz


@dataclass
class LandscapeSample:
    """Losses at θ* + D u (SPEC §1). ``indices`` are the rows' positions in the full run (0 = the centre)."""

    coords: np.ndarray
    losses: np.ndarray
    accuracies: np.ndarray
    indices: np.ndarray
    directions: dict[str, Any]
    n_eval: int
    meta: dict[str, Any] = field(default_factory=dict)
    direction_matrix: np.ndarray | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # further per-sample arrays saved with it

    @property
    def finite(self) -> np.ndarray:
        return np.isfinite(self.losses)

    @property
    def n_nonfinite(self) -> int:
        return int((~self.finite).sum())

    @property
    def center_loss(self) -> float:
        hit = np.flatnonzero(self.indices == 0)
        if not len(hit):
            raise ValueError("this shard does not hold the centre (index 0)")
        return float(self.losses[hit[0]])

    def point_cloud(self, scale: float = 1.0) -> np.ndarray:
        """The finite samples as points x_i = (u_i, s·f(u_i)) ∈ R^{k+1} (SPEC §1)."""
        ok = self.finite
        return np.hstack([self.coords[ok], scale * self.losses[ok, None]])

    def summary(self) -> dict[str, Any]:
        return {
            "n_points": int(len(self.losses)),
            "n_nonfinite": self.n_nonfinite,
            "n_eval": self.n_eval,
            "k": int(self.coords.shape[1]),
            "directions": self.directions,
            **self.meta,
        }

    @staticmethod
    def concatenate(parts: list["LandscapeSample"]) -> "LandscapeSample":
        """Join shards (any order) back into the full run, sorted by index."""
        idx = np.concatenate([p.indices for p in parts])
        order = np.argsort(idx, kind="stable")
        if not np.array_equal(idx[order], np.arange(len(idx))):
            raise ValueError("shards do not cover the sample indices exactly once")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])[order]
        meta = dict(parts[0].meta, shard=[0, 1])
        return LandscapeSample(
            cat("coords"),
            cat("losses"),
            cat("accuracies"),
            idx[order],
            parts[0].directions,
            parts[0].n_eval,
            meta,
            parts[0].direction_matrix,
        )

    def save(self, path: str | Path) -> None:
        """Write ``path`` (.npz arrays) and ``path`` with .json (metadata); the JSON is written last."""
        path = Path(path).with_suffix(".npz")
        arrays = {"coords": self.coords, "losses": self.losses, "accuracies": self.accuracies, "indices": self.indices}
        if self.direction_matrix is not None:
            arrays["direction_matrix"] = self.direction_matrix
        clash = set(self.arrays) & (set(arrays) | {"direction_matrix"})
        if clash:
            raise ValueError(f"extra sample arrays may not reuse the names {sorted(clash)}")
        atomic_write_npz(path, **arrays, **self.arrays)
        atomic_write_json(
            path.with_suffix(".json"),
            {"directions": self.directions, "n_eval": self.n_eval, "meta": self.meta, "summary": self.summary()},
        )

    @classmethod
    def load(cls, path: str | Path) -> "LandscapeSample":
        path = Path(path).with_suffix(".npz")
        meta = json.loads(path.with_suffix(".json").read_text())
        with np.load(path, allow_pickle=False) as z:
            dm = z["direction_matrix"] if "direction_matrix" in z.files else None
            base = {"coords", "losses", "accuracies", "indices", "direction_matrix"}
            return cls(
                z["coords"],
                z["losses"],
                z["accuracies"],
                z["indices"],
                meta["directions"],
                meta["n_eval"],
                meta["meta"],
                dm,
                {name: z[name] for name in z.files if name not in base},
            )
