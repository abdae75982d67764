"""Tests of landscape.curvature (the package mirrored)."""
