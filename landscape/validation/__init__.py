"""The estimators against ground truth (SPEC §8–9): surfaces with known curvature (``manifolds``), the benchmark
suite behind ``landscape validate`` (``benchmarks``) and the trained-net slices it checks (``slices``)."""
