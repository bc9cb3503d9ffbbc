"""Comparing runs side by side: validation curves overlaid and a metrics table (the course compares its
dropout / augmentation / batch-norm variants this way).

Example:
    >>> table = compare_runs(["runs/base", "runs/dropout"], "compare")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._io import write_text
from ..errors import DataError, MissingFileError, SettingError
from ..runs.folder import RunFolder
from ..runs.history import best_row
from .displays import CompareDisplay

__all__ = ["run_summary", "compare_runs", "markdown_table"]


def run_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's best epoch by its own `monitor` and the values at that epoch (as in its metrics.json), the
    train/val accuracy gap there, epochs, time, and what was trained (model, strategy, data)."""
    run = RunFolder(run_dir)
    rows = run.history()
    if not rows:
        raise MissingFileError(f"'{run.path}' has no history.csv; pass run folders written by `transferlab train`.")
    config = run.config()
    monitor = config.get("monitor", "val_accuracy")
    best = best_row(rows, monitor)
    if best is None:
        raise DataError(f"'{run.path}' has no validation results yet.")
    gap = best["accuracy"] - best["val_accuracy"] if best.get("accuracy") is not None and \
        best.get("val_accuracy") is not None else None
    metrics = run.metrics()
    seconds = metrics.get("wall_seconds") or round(sum(r["seconds"] for r in rows if r.get("seconds")), 1)
    return {"run": run.path.name, "model": config.get("model"), "strategy": config.get("strategy"),
            "data": Path(str(config["data"])).name if config.get("data") else None, "monitor": monitor,
            "best_val_accuracy": _round(best.get("val_accuracy")), "best_val_loss": _round(best.get("val_loss")),
            "best_epoch": int(best["epoch"]), "train_val_gap": _round(gap), "epochs": len(rows),
            "seconds": seconds, "history": rows}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A markdown table of `rows`; each column is (header, key, format); None prints empty; text columns are
    left-aligned, numbers right-aligned."""
    text = {k for _, k, _ in columns if all(isinstance(r.get(k), str) for r in rows)}
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "| " + " | ".join("---" if k in text else "---:" for _, k, _ in columns) + " |"]
    for r in rows:
        lines.append("| " + " | ".join("" if r.get(k) is None else f.format(r[k]) for _, k, f in columns) + " |")
    return "\n".join(lines) + "\n"


def compare_runs(runs: list[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Writes compare.png (validation accuracy and loss of every run) and compare.md (the metrics table)
    into `out_dir`; returns the summaries."""
    if len(runs) < 1:
        raise SettingError("Give at least one run folder to compare.")
    summaries = [run_summary(r) for r in runs]
    names = [s["run"] for s in summaries]
    if len(set(names)) != len(names):  # same folder names under different parents: use the paths
        for s, r in zip(summaries, runs):
            s["run"] = str(r)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    CompareDisplay({s["run"]: s["history"] for s in summaries}).plot().save(out / "compare.png")
    write_text(out / "compare.md", markdown_table(summaries, [
        ("run", "run", "{}"), ("model", "model", "{}"), ("strategy", "strategy", "{}"), ("data", "data", "{}"),
        ("best val_accuracy", "best_val_accuracy", "{:.4f}"),
        ("best val_loss", "best_val_loss", "{:.4f}"), ("best epoch", "best_epoch", "{}"),
        ("train-val gap", "train_val_gap", "{:+.4f}"), ("epochs", "epochs", "{}"), ("seconds", "seconds", "{}")]))
    return [{k: v for k, v in s.items() if k != "history"} for s in summaries]
