"""What a run prints and records about itself: the data table, the environment."""

from __future__ import annotations

import platform

import lightning as L
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._console import terminal_safe
from .._version import __version__
from ..data.folder import DataSplits

__all__ = ["print_data_summary", "environment"]



def print_data_summary(console: Console, data: DataSplits) -> None:
    """Prints images per class and split, and the skipped files."""
    console.print(f"Data: {terminal_safe(data.root)} ({data.layout})", highlight=False, markup=False)
    table = Table()
    table.add_column("class")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    counts = data.counts()
    for name in data.classes:
        table.add_row(escape(terminal_safe(name)), str(counts["train"][name]), str(counts["validation"][name]))
    table.add_row("[bold]total", f"[bold]{sum(counts['train'].values())}",
                  f"[bold]{sum(counts['validation'].values())}")
    console.print(table)
    if data.skipped:
        console.print(f"[yellow]Skipped {len(data.skipped)} file(s) (listed in data_report.json):")
        for item in data.skipped[:10]:
            path, reason = (escape(terminal_safe(item[k])) for k in ("path", "reason"))
            console.print(f"  [yellow]{path}[/]: {reason}")
        if len(data.skipped) > 10:
            console.print(f"  ... and {len(data.skipped) - 10} more")


def environment() -> dict[str, str]:
    return {"transferlab": __version__, "torch": str(torch.__version__), "lightning": str(L.__version__),
            "python": platform.python_version(), "platform": platform.platform(),
            "cuda": str(torch.cuda.is_available())}
