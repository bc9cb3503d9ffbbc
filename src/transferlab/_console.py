"""Console helpers shared by the layers: rich progress bars."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["progress_bar"]


def progress_bar(quiet: bool) -> Progress:
    """A transient rich progress bar (description, bar, n/N, time left); disabled when `quiet`."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=quiet, transient=True)
