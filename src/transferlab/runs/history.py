"""history.csv and the metrics derived from it: one definition of "best" for every reader.

`best_row` picks the epoch by the run's `monitor` (max val_accuracy, or min val_loss); `best_val_accuracy` and
`best_val_loss` are the values *at that epoch* everywhere (metrics.json, compare, report); the extremes of
each column are `max_val_accuracy` and `min_val_loss`.

Example:
    >>> rows = [{"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5}, {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.6}]
    >>> best_row(rows, "val_accuracy")["epoch"], best_row(rows, "val_loss")["epoch"]
    (2, 1)
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from .._io import write_text

__all__ = ["HISTORY_FIELDS", "MONITORS", "read_history", "write_history", "best_row", "run_metrics"]

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


def best_row(rows: list[dict[str, Any]], monitor: str = "val_accuracy") -> dict[str, Any] | None:
    """The epoch the run keeps as its best: max `val_accuracy` or min `val_loss` (the first on ties, as
    Lightning's ModelCheckpoint keeps the first), or None before any validation."""
    scored = [r for r in rows if r.get(monitor) is not None]
    if not scored:
        return None
    pick = max if MONITORS.get(monitor, "max") == "max" else min
    return pick(scored, key=lambda r: r[monitor])


def run_metrics(rows: list[dict[str, Any]], monitor: str, planned_epochs: int | None = None,
                wall_seconds: float | None = None) -> dict[str, Any]:
    """The summary written as metrics.json: the best epoch by `monitor` and the values at it, the extremes,
    the final epoch, epochs run and whether early stopping ended the run before `planned_epochs`."""
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
    if wall_seconds is not None:
        out["wall_seconds"] = round(wall_seconds, 2)
    return out
