"""`transferlab models`: the course's catalog of pretrained families and the registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, user_errors

COLUMNS = ("name", "keras", "source_name", "parameters", "depth", "size_mb", "top1", "top5", "input_size", "weights")


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
    table = Table(title="transferlab models (the course's catalog)")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("parameters", "depth", "size_mb", "top1", "top5",
                                                            "input_size") else "left")
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = r[c]
            cells.append("" if v is None else f"{v:,}" if c == "parameters" else f"{v:.3f}" if c in ("top1", "top5")
                         else str(v))
        table.add_row(*cells)
    console = Console()
    console.print(table)
    console.print("top1/top5: the course's Keras Applications table (Keras' own weights), or torchvision's weights "
                  "metadata for AlexNet/GoogLeNet. depth: layers with weights (conv + dense). weights: bundled = "
                  "works offline; cached = downloaded before; download = needs internet once (or `--weights FILE`).")
    console.print("Keras spellings work (`--model ResNet50`), and so does any timm architecture or `hf-hub:org/name`.")
