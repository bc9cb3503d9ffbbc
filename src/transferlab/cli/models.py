"""`transferlab models`: the course's catalog of pretrained families and the registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, user_errors

COLUMNS = ("name", "keras", "source_name", "parameters", "depth", "size_mb", "top1", "top5", "input_size", "weights")
# which columns stay when the terminal is narrow (names are never cut): the first ones
PRIORITY = ("name", "parameters", "top1", "weights", "size_mb", "keras", "input_size", "depth", "top5", "source_name")
HEADERS = {"source_name": "builds", "parameters": "params", "size_mb": "MB", "input_size": "input"}
NUMERIC = ("parameters", "depth", "size_mb", "top1", "top5", "input_size")


def _cell(row: dict, column: str, compact: bool = True) -> str:
    value = row[column]
    if value is None:
        return ""
    if column == "parameters":
        if not compact:
            return f"{value:,}"
        return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"
    return f"{value:.3f}" if column in ("top1", "top5") else str(value)


def fitting_columns(rows: list[dict], width: int) -> list[str]:
    """The columns of `COLUMNS` (in that order) that fit `width`, dropping the least important first."""
    chosen = list(PRIORITY)

    def needed(columns: list[str]) -> int:
        return sum(max(len(HEADERS.get(c, c)), *(len(_cell(r, c)) for r in rows)) + 3 for c in columns) + 1

    while len(chosen) > 1 and needed(chosen) > width:
        chosen.pop()
    return [c for c in COLUMNS if c in chosen]


@user_errors
def models(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the model catalog: size, depth, ImageNet accuracy, input size and weight availability.

    Keras spellings work wherever a model name is asked for (`--model ResNet50`), and so does any timm
    architecture or `hf-hub:org/name`.
    """
    from ..models.table import catalog_rows

    rows = catalog_rows()
    if json_output:
        print_json(rows)
        return
    console = Console()
    columns = fitting_columns(rows, console.width)
    table = Table(title="transferlab models (the course's catalog)")
    for col in columns:
        table.add_column(HEADERS.get(col, col), justify="right" if col in NUMERIC else "left",
                         no_wrap=col == "name", overflow="fold")
    for r in rows:
        table.add_row(*(_cell(r, c, compact=console.width < 140) for c in columns))
    console.print(table)
    hidden = [HEADERS.get(c, c) for c in COLUMNS if c not in columns]
    if hidden:
        console.print(f"Left out at this width: {', '.join(hidden)} (a wider terminal shows them; `--json` has "
                      "every column).")
    console.print("top1/top5: the course's Keras Applications table (Keras' own weights), or torchvision's weights "
                  "metadata for AlexNet/GoogLeNet. depth: layers with weights (conv + dense). weights: bundled = "
                  "works offline; cached = downloaded before; download = needs internet once (or `--weights FILE`).")
    console.print("Keras spellings work (`--model ResNet50`), and so does any timm architecture or `hf-hub:org/name`.")
