"""Comparing runs side by side: validation curves overlaid and a metrics table (the course compares its
dropout / augmentation / batch-norm variants this way).

Example:
    >>> table = compare_runs(["runs/base", "runs/dropout"], "compare")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from ._io import write_text
from .displays import CompareDisplay

__all__ = ["run_summary", "compare_runs", "markdown_table"]


def run_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Best validation accuracy and loss, best epoch, train/val accuracy gap at that epoch, epochs and time."""
    run = Path(run_dir)
    history = run / "history.csv"
    if not history.is_file():
        raise FileNotFoundError(f"'{run}' has no history.csv; pass run folders written by `transferlab train`.")
    with history.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    scored = [r for r in rows if r.get("val_accuracy") not in (None, "")]
    if not scored:
        raise ValueError(f"'{run}' has no validation results yet.")
    best = max(scored, key=lambda r: float(r["val_accuracy"]))
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    gap = float(best["accuracy"]) - float(best["val_accuracy"]) if best.get("accuracy") not in (None, "") else None
    return {"run": run.name, "best_val_accuracy": round(float(best["val_accuracy"]), 4),
            "best_val_loss": round(min(float(r["val_loss"]) for r in scored if r.get("val_loss")), 4),
            "best_epoch": int(best["epoch"]), "train_val_gap": None if gap is None else round(gap, 4),
            "epochs": len(rows), "seconds": metrics.get("wall_seconds")
            or round(sum(float(r["seconds"]) for r in rows if r.get("seconds")), 1), "history": rows}


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
        raise ValueError("Give at least one run folder to compare.")
    summaries = [run_summary(r) for r in runs]
    names = [s["run"] for s in summaries]
    if len(set(names)) != len(names):  # same folder names under different parents: use the paths
        for s, r in zip(summaries, runs):
            s["run"] = str(r)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    CompareDisplay({s["run"]: s["history"] for s in summaries}).plot().save(out / "compare.png")
    write_text(out / "compare.md", markdown_table(summaries, [
        ("run", "run", "{}"), ("best val_accuracy", "best_val_accuracy", "{:.4f}"),
        ("best val_loss", "best_val_loss", "{:.4f}"), ("best epoch", "best_epoch", "{}"),
        ("train-val gap", "train_val_gap", "{:+.4f}"), ("epochs", "epochs", "{}"), ("seconds", "seconds", "{}")]))
    return [{k: v for k, v in s.items() if k != "history"} for s in summaries]
