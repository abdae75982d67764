"""Figures (PNG, headless matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .results import atomic_write_bytes  # noqa: E402


def save(fig, path: str | Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def estimate_vs_truth(scatter: dict, path: str | Path) -> None:
    """Grid of scatter plots: rows = benchmarks, columns = estimators (validation benchmark figure)."""
    benches = sorted({b for b, _ in scatter})
    ests = sorted({e for _, e in scatter})
    fig, axes = plt.subplots(len(benches), len(ests), figsize=(2.6 * len(ests), 2.3 * len(benches)), squeeze=False)
    for i, b in enumerate(benches):
        for j, e in enumerate(ests):
            ax = axes[i, j]
            if (b, e) in scatter:
                truth, est = scatter[(b, e)]
                ax.scatter(truth, est, s=3, alpha=0.5)
                r = np.corrcoef(truth, est)[0, 1]
                ax.set_title(f"{b}\n{e}: r={r:+.2f}", fontsize=7)
            else:
                ax.axis("off")
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_ylabel("estimate", fontsize=7)
            if i == len(benches) - 1:
                ax.set_xlabel("true scalar curvature", fontsize=7)
    fig.tight_layout()
    save(fig, path)
