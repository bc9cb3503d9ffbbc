"""Workflows over the library: the regularization `study` and the
model `benchmark`."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "regularization_study": ".study", "benchmark_models": ".benchmark",
})
