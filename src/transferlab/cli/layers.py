"""`transferlab layers`: the base's layers, like Keras' `model.summary()` — the indices `unfreeze-from=K` uses."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ._common import print_json, user_errors


@user_errors
def layers(
    model: Annotated[str, typer.Argument(help="Registered model or timm name, e.g. resnet50.")],
    strategy: Annotated[str | None, typer.Option(help="Show the trainable column under this strategy, e.g. "
                                                      "unfreeze-from=keras:143 (Keras' layer index) or "
                                                      "unfreeze-from=127.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size for the output shapes (default: the "
                                                        "model's own).", min=8, max=4096)] = None,
    num_classes: Annotated[int, typer.Option(help="Classes of the new head.", min=1, max=100_000)] = 2,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the layers of MODEL's base: index, name, type, output shape, parameters, trainable.

    Example: transferlab layers resnet50 --strategy unfreeze-from=layer4
    """
    from ..models import build_classifier, summarize_layers
    from ..training.strategies import apply_strategy, count_parameters

    net = build_classifier(model, num_classes=num_classes, weights="none", image_size=image_size)
    if strategy:
        apply_strategy(net, strategy)
    size = image_size or net.pretrained_cfg["input_size"][-1]
    rows = summarize_layers(net, size)
    totals = count_parameters(net)
    head = sum(p.numel() for p in net.head.parameters())
    if json_output:
        print_json({"model": model, "image_size": size, "layers": rows, "head_parameters": head, **totals})
        return
    table = Table(title=f"{model} base at {size}x{size} (strategy: {strategy or 'full'})", box=box.SIMPLE_HEAD)
    longest = max((len(r["name"]) for r in rows), default=5)
    # the layer's name is what unfreeze-from=NAME needs: never cut; the other columns fold to make room
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("layer", no_wrap=True, min_width=longest)
    table.add_column("type", overflow="fold")
    table.add_column("output shape", overflow="fold")
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("trainable", justify="center", no_wrap=True)
    for r in rows:
        mark = "-" if r["trainable"] is None else ("yes" if r["trainable"] else "[dim]no")
        shape = "x".join(map(str, r["output_shape"])) if r["output_shape"] else ""
        table.add_row(str(r["index"]), r["name"], r["type"], shape, f"{r['parameters']:,}", mark)
    console = Console()
    console.print(table)
    console.print(f"New head: {head:,} parameters. Total params: {totals['total']:,}  Trainable params: "
                  f"{totals['trainable']:,}  Non-trainable params: {totals['non_trainable']:,}")
