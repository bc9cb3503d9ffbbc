"""`transferlab advise`: which strategy and learning rate, measured on the data in seconds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, user_errors


@user_errors
def advise(
    data: Annotated[str, typer.Argument(help="Data folder (as for `train`).")],
    model: Annotated[str, typer.Option(help="Model to advise for.")] = "efficientnet_lite0",
    weights: Annotated[str | None, typer.Option(help="imagenet (default), none, or a weights file.")] = None,
    max_images: Annotated[int, typer.Option(help="Most training images measured.")] = 2000,
    no_lr_test: Annotated[bool, typer.Option("--no-lr-test", help="Skip the learning-rate range test.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
) -> None:
    """Measure the data against the model (class sizes, similarity to ImageNet, separability of frozen
    features, image sizes, a learning-rate range test) and recommend how to train, with the exact command.

    Example: transferlab advise my_photos   (then: transferlab train my_photos --strategy auto --lr auto)
    """
    from ..training.advise import advise as run_advice

    advice = run_advice(data, model, weights, max_images=max_images, quiet=json_output, lr_test=not no_lr_test)
    if json_output:
        print_json(advice.to_dict())
        return
    console = Console()
    table = Table(title=f"Advice for {data} with {advice.model} ({advice.seconds} s)")
    table.add_column("setting")
    table.add_column("recommended")
    for key in ("strategy", "lr", "epochs", "augment", "image_size"):
        table.add_row(key, str(getattr(advice, key)))
    console.print(table)
    console.print("[bold]Why:[/]")
    for reason in advice.reasons:
        console.print(f"  - {reason}")
    m = advice.measurements
    shown = {k: m[k] for k in ("images_per_class_median", "linear_probe_accuracy", "knn_accuracy",
                               "imagenet_confidence", "imagenet_entropy", "median_short_side", "lr_range_test")
             if k in m}
    console.print("Measured: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    console.print(f"[bold]Command:[/] {advice.command}")
