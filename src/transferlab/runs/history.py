"""history.csv and the metrics derived from it: one definition of "best" for every reader.

`best_row` picks the epoch by the run's `monitor` (max val_accuracy, or min val_loss; on a tie the other
validation metric decides: `rank`, `is_better`, which the checkpoints and the epoch line use too);
`best_val_accuracy` and `best_val_loss` are the values *at that epoch* everywhere (metrics.json, compare, report);
the extremes of each column are `max_val_accuracy` and `min_val_loss`.

Example:
    >>> rows = [{"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5}, {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.6}]
    >>> best_row(rows, "val_accuracy")["epoch"], best_row(rows, "val_loss")["epoch"]
    (2, 1)
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from .._io import write_text

__all__ = ["HISTORY_FIELDS", "MONITORS", "METRICS", "read_history", "write_history", "metric_row", "rank", "is_better",
           "best_row", "run_metrics", "chance_accuracy", "chance_warning", "CHANCE_MARGIN"]

HISTORY_FIELDS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
MONITORS = {"val_accuracy": "max", "val_loss": "min"}


def write_history(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> Path:
    """Writes history rows as CSV (Keras' `history.history` columns plus phase, lr, seconds), atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buf.getvalue())


def read_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Reads `history.csv` back into rows of numbers (empty cells become None); [] when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(f)]
    for row in rows:
        row["epoch"] = int(row["epoch"])
        row["phase"] = int(row.get("phase") or 1)
    return rows


METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def metric_row(metrics: Any) -> dict[str, float | None]:
    """An epoch's metrics as history.csv holds them (rounded to 6 decimals; None when absent), from a mapping of
    numbers or tensors such as Lightning's `trainer.callback_metrics`: what the history writes and what "best" is
    judged on, so both see the same numbers.

    Example:
        >>> metric_row({"val_accuracy": 0.87654321, "val_loss": 0.5})
        {'loss': None, 'accuracy': None, 'val_loss': 0.5, 'val_accuracy': 0.876543}
    """
    return {key: round(float(metrics[key]), 6) if key in metrics else None for key in METRICS}


def rank(row: dict[str, Any], monitor: str = "val_accuracy") -> tuple[float, float]:
    """How good an epoch is, as a sort key where larger is better: the monitored metric first, and on a tie the
    other validation metric (the lower val_loss for val_accuracy, the higher val_accuracy for val_loss). An epoch
    that only ties the best accuracy but fits the validation images better is the better model: on small data
    accuracy saturates early, and the first epoch at the ceiling is an under-trained one.

    Example:
        >>> rank({"val_accuracy": 0.9, "val_loss": 0.3}) > rank({"val_accuracy": 0.9, "val_loss": 0.5})
        True
    """
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {', '.join(MONITORS)}; got {monitor!r}")
    other = "val_loss" if monitor == "val_accuracy" else "val_accuracy"
    sign = {"max": 1.0, "min": -1.0}

    def value(key: str) -> float:
        v = row.get(key)
        return -math.inf if v is None or not math.isfinite(float(v)) else sign[MONITORS[key]] * float(v)

    return value(monitor), value(other)


def is_better(row: dict[str, Any], best: dict[str, Any] | None, monitor: str = "val_accuracy") -> bool:
    """Whether `row` beats `best` (None: nothing yet) by `rank`: the one test of "a new best epoch" for checkpoints,
    the bundle, the epoch line and the history's best row (early stopping waits for the monitored metric itself).

    Example:
        >>> is_better({"val_accuracy": 1.0, "val_loss": 0.1}, {"val_accuracy": 1.0, "val_loss": 0.2})
        True
    """
    if row.get(monitor) is None or any(row.get(k) is not None and not math.isfinite(float(row[k])) for k in MONITORS):
        return False  # a NaN loss (a diverged model) is never the best, whatever its accuracy
    return best is None or rank(row, monitor) > rank(best, monitor)


def best_row(rows: list[dict[str, Any]], monitor: str = "val_accuracy") -> dict[str, Any] | None:
    """The epoch the run keeps as its best (`is_better`: the monitored metric, ties broken by the other validation
    metric; the first of exact equals), or None before any validation."""
    best = None
    for row in rows:
        if is_better(row, best, monitor):
            best = row
    return best


CHANCE_MARGIN = 0.05  # a best validation accuracy within this of chance says the model learnt nothing


def chance_accuracy(counts: dict[str, int]) -> float | None:
    """The accuracy of always answering the most frequent class, from images per class (None without images).

    Example:
        >>> chance_accuracy({"cats": 30, "dogs": 10})
        0.75
    """
    total = sum(counts.values())
    return round(max(counts.values()) / total, 4) if total else None


def chance_warning(metrics: dict[str, Any], classes: int) -> str:
    """What to say when a run stayed at chance (`metrics['at_chance']`): the numbers and what to try."""
    return (f"the best validation accuracy ({metrics.get('best_val_accuracy') or 0:.3f}) stayed at chance level "
            f"({metrics.get('chance_accuracy') or 0:.3f}: always answering the largest of the {classes} classes). The "
            "model has learnt nothing yet: train longer (--epochs), use more images, try another --lr, or start from "
            "pretrained weights.")


def run_metrics(rows: list[dict[str, Any]], monitor: str, planned_epochs: int | None = None,
                wall_seconds: float | None = None, chance: float | None = None) -> dict[str, Any]:
    """The summary written as metrics.json: the best epoch by `monitor` and the values at it, the extremes,
    the final epoch, epochs run and whether early stopping ended the run before `planned_epochs`; with `chance`
    (`chance_accuracy` of the validation split), whether the best accuracy stayed within `CHANCE_MARGIN` of it."""
    best = best_row(rows, monitor) or {}
    last = rows[-1] if rows else {}
    out = {
        "monitor": monitor,
        "best_epoch": int(best["epoch"]) if best else None,
        "best_phase": int(best.get("phase") or 1) if best else None,
        "best_val_accuracy": best.get("val_accuracy"),
        "best_val_loss": best.get("val_loss"),
        "max_val_accuracy": max((r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None), default=None),
        "min_val_loss": min((r["val_loss"] for r in rows if r.get("val_loss") is not None), default=None),
        "final": {k: last.get(k) for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")},
        "epochs_run": len(rows),
        "stopped_early": bool(rows) and planned_epochs is not None and len(rows) < planned_epochs,
    }
    if chance is not None:
        out["chance_accuracy"] = chance
        out["at_chance"] = out["best_val_accuracy"] is not None and out["best_val_accuracy"] <= chance + CHANCE_MARGIN
    if wall_seconds is not None:
        out["wall_seconds"] = round(wall_seconds, 2)
    return out
