"""The Hessian of the loss over the evaluation subset (SPEC §4, §7): Hessian-vector products, Lanczos extremes,
trace, projected Hessian DᵀHD and the exact Hessian of small models (``spectrum``), the SLQ spectral density
(``density``), PyHessian's routines for comparison (``pyhessian_tools``), and the exact curvature field of a
sampled slice by autograd on its k coordinates (``slice_field``)."""
