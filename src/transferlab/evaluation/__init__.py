"""Evaluation: metrics of a model on labelled images, the displays (scikit-learn's where they exist),
report.html and the comparison of runs. Never imports training.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "evaluate": ".metrics", "write_evaluation": ".metrics", "write_report": ".report", "compare_runs": ".compare",
})
