"""Console helpers shared by the layers: rich progress bars."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["progress_bar"]


def progress_bar(quiet: bool) -> Progress:
    """A transient rich progress bar on stderr (description, bar, n/N, time left). It is drawn only on a
    terminal: `quiet`, a pipe, a log file or a notebook get no bar (and no blank lines where one would be)."""
    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, disable=quiet or not console.is_terminal or console.is_jupyter, transient=True)
