"""Workflows over the library: the regularization `study`, the model `benchmark` and the advice under a
time budget (`advise_within`)."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "regularization_study": ".study", "benchmark_models": ".benchmark", "advise_within": ".budget",
})
