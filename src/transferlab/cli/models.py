"""`transferlab models`: the model registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, user_errors


@user_errors
def models(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the registered models (any timm architecture name works too)."""
    from ..models import list_models

    rows = [{"name": m.name, "architecture": m.architecture, "weights": m.weights, "description": m.description}
            for m in list_models()]
    if json_output:
        print_json(rows)
        return
    table = Table(title="transferlab models")
    for col in ("name", "architecture", "weights", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(r[c] for c in ("name", "architecture", "weights", "description")))
    console = Console()
    console.print(table)
    console.print("Any timm architecture works too (`--model resnet50`): weights download when online, or pass "
                  "`--weights FILE`.")
