"""The one owner of a run folder's files: config.yaml, history.csv, metrics.json, split.csv, state.json and
the inference bundle. Every other layer reads and writes a run folder through this package.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Bundle": ".bundle", "load_bundle": ".bundle", "save_bundle": ".bundle", "find_bundle": ".folder",
    "RunFolder": ".folder", "HISTORY_FIELDS": ".history", "read_history": ".history", "write_history": ".history",
    "best_row": ".history", "run_metrics": ".history",
})
