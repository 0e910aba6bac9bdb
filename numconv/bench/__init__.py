"""Benchmarking support: the shared shape suite and the side-by-side runner.

PyTorch is optional here and only imported when available: it is the anchor
the figures are compared with, never a dependency of numconv itself.
"""
