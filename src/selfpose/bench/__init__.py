"""Benchmarks of self-supervised methods on one dataset and budget: ``selfpose benchmark``."""
