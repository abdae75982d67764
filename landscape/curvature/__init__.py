"""Curvature from samples and exact references, in numpy only (SPEC §3–6): kNN graphs and random walks
(``graphs``), diffusion curvature of point clouds (``diffusion``, ``charts``) and of sampled loss graphs
(``loss_graph``, ``polyfit``), the exact curvature of a function's graph from its gradient and Hessian
(``slice_geometry``), both views of one slice with a verdict (``slice_curvature``), Ollivier–Ricci (``ollivier``)."""
