"""Time and peak memory of the comparison form (loss-graph flat copy, SPEC §5b) at n = 1k, 10k, 100k.

Goals: all points at 10k ≤ 10 s; 100 query points at 100k ≤ 30 s; peak memory ≤ 2 GB. Baseline: a dense n×n
implementation (dense kernel, dense Pᵗ rows, Euclidean ground distance) where it still fits; ours is run with both
ground distances on the plain u copy (``chart=False``, the dense baseline's computation), as ``chart``, the
default for loss graphs (an exponential chart of 400 samples per query from u − u_query, both walks on one
patch graph, batched over queries), and as ``tangent``, the default for general clouds (the same with a
local-PCA + third-order chart, no u). Each configuration runs in its own process so peak RSS is its own.

Usage: python benchmarks/curvature_scaling.py [--sizes 1000 10000 100000] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import ROOT  # noqa: F401  (puts the repository on sys.path)


def cloud(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (n, 2))
    u[0] = 0
    X = np.column_stack([u, 0.5 * (u[:, 0] ** 2 - 0.5 * u[:, 1] ** 2)])
    return X, u


def dense_comparison(X, U, q, t=16, k=15, bandwidth=3.0, alpha=1.0):
    import numpy as np
    from scipy.spatial.distance import cdist

    from landscape.curvature.graphs import knn_graph

    h = knn_graph(U, k).median_nn()

    def w1(Y):
        D = cdist(Y, Y)
        K = np.exp(-(D**2) / (bandwidth * h) ** 2)
        qd = K.sum(1) ** alpha
        K /= np.outer(qd, qd)
        P = K / K.sum(1, keepdims=True)
        M = np.eye(len(Y))[q]
        for _ in range(t):
            M = M @ P
        return (M * D[q]).sum(1)

    return 1 - w1(X) / w1(U)


def child(method: str, n: int, nq: int) -> None:
    import numpy as np

    from landscape.curvature.diffusion import comparison

    X, U = cloud(n)
    q = np.arange(n) if nq == 0 else np.linspace(0, n - 1, nq).astype(int)
    t0 = time.perf_counter()
    if method == "dense":
        dense_comparison(X, U, q)
    elif method == "chart":  # the loss-graph default: one exponential chart (patch of 400 samples) per query
        comparison(X, U, q)
    elif method == "tangent":  # the general-cloud default: no u, charts from local PCA
        comparison(X, "tangent", q, intrinsic_dim=2)
    else:  # the plain u copy, the same computation as the dense baseline
        comparison(X, U, q, distance=method, chart=False)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--timeout", type=int, default=300)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), int(a.child[2]))
        return
    print(f"{'n':>8}{'queries':>9}{'method':>11}{'seconds':>10}{'peak MB':>9}   vs dense")
    for n in a.sizes:
        for nq in (100, 0):
            base = None
            for method in ("dense", "euclidean", "graph", "chart", "tangent"):
                if method == "dense" and (n > 10000 or (n == 10000 and nq == 0)):
                    print(f"{n:>8}{nq or n:>9}{method:>11}{'skipped: n×n dense ≥ 0.8 GB and t dense n³ products':>40}")
                    continue
                try:
                    r = subprocess.run(
                        [sys.executable, __file__, "--child", method, str(n), str(nq)],
                        capture_output=True,
                        text=True,
                        timeout=a.timeout,
                        check=True,
                    )
                    res = json.loads(r.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    print(f"{n:>8}{nq or n:>9}{method:>11}{'> ' + str(a.timeout):>10}")
                    continue
                except subprocess.CalledProcessError as exc:
                    print(f"{n:>8}{nq or n:>9}{method:>11}  failed: {exc.stderr.strip().splitlines()[-1]}")
                    continue
                if method == "dense":
                    base = res["seconds"]
                ratio = f"{base / res['seconds']:.1f}× faster" if base and method != "dense" else ""
                print(
                    f"{n:>8}{nq or n:>9}{method:>11}{res['seconds']:>10.2f}{res['peak_mb']:>9.0f}   {ratio}", flush=True
                )


if __name__ == "__main__":
    main()
