"""Runnable benchmark scripts (``python -m benchmarks.NAME``); results are committed under
``benchmarks/results/``."""
