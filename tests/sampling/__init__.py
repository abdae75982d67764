"""Tests of landscape.sampling (the package mirrored)."""
