"""Tests of landscape.hessian (the package mirrored)."""
