"""The Hessian of the loss over the evaluation subset (SPEC §4, §7): Hessian-vector products, Lanczos extremes
and projected Hessian DᵀHD (``spectrum``), the shared Krylov budget (``krylov_spectrum``), the SLQ spectral density
(``density``), per-block spectra (``blocks``), the convexity map (``eigen_map``), mini-batch extremes
(``batch_spectrum``), the references they are tested against (``reference``: dense Hessian, power iteration, plain
Hutchinson, PyHessian), and the exact curvature field of a
sampled slice by autograd on its k coordinates (``slice_field``)."""
