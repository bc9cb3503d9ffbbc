"""`transferlab compare`: runs side by side (validation curves and a metrics table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, user_errors


@user_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to compare.")],
    out: Annotated[Path, typer.Option(help="Folder for compare.png and compare.md.")] = Path("compare"),
    json_output: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Overlay the validation curves of several runs and tabulate their best results.

    Example: transferlab compare runs/baseline runs/dropout50 runs/augment --out compare
    """
    from ..evaluation.compare import compare_runs

    rows = compare_runs(runs, out)
    if json_output:
        print_json(rows)
        return
    table = Table(title="Runs compared")
    cols = ["run", "best_val_accuracy", "best_val_loss", "best_epoch", "train_val_gap", "epochs", "seconds"]
    for c in cols:
        table.add_column(c.replace("_", " "), justify="left" if c == "run" else "right")
    for r in rows:
        table.add_row(*("" if r[c] is None else str(r[c]) for c in cols))
    Console().print(table)
    Console().print(f"Written: {out / 'compare.png'}, {out / 'compare.md'}")
