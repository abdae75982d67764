"""The loss around θ* (SPEC §1–2): directions D (``directions``), sample coordinates u (``coordinates``), the
loss at θ* + D u (``sampler``, with the exact first-layer shortcut in ``first_layer`` and the fused inference graph
of conv nets in ``inference``), the automatic radius
(``radius``) and paths between checkpoints (``paths``: interpolation, PCA trajectories)."""
