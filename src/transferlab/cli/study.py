"""`transferlab study regularization`: the course's CNN improvement techniques, measured side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, quietable, user_errors

app = typer.Typer(help="Studies that train several variants with one budget and compare them.",
                  no_args_is_help=True)


@app.command("regularization")
@quietable
@user_errors
def regularization(
    data: Annotated[str, typer.Argument(help="Data folder (class folders, or train/ + validation/).")],
    out: Annotated[Path, typer.Option(help="Study folder: one run per variant, study.md, compare.png.")] =
    Path("study"),
    epochs: Annotated[int, typer.Option(help="Epochs per variant (the same budget for all).", min=1,
                                          max=10_000)] = 10,
    subset: Annotated[int | None, typer.Option(help="At most this many training images per class.", min=1)
                      ] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size (course: 150).", min=8, max=4096)] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size.", min=1, max=4096)] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate (course: 1e-4).")] = 1e-4,
    variants: Annotated[str | None, typer.Option(help="Comma-separated subset of the variants.")] = None,
    num_workers: Annotated[int | None, typer.Option(help="DataLoader workers.", min=0, max=256)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Train the course CNN as baseline, with dropout 20/30/50%, L2 weights, augmentation, dropout +
    augmentation, and dropout + augmentation + batch norm; compare best val accuracy, epoch, gap and time.

    Example: transferlab study regularization cifar10-jpg --subset 500 --epochs 8 --image-size 64
    """
    from ..workflows.study import regularization_study

    names = [v.strip() for v in variants.split(",")] if variants else None
    rows = regularization_study(data, out, epochs=epochs, subset=subset, image_size=image_size,
                                batch_size=batch_size, lr=lr, variants=names, num_workers=num_workers,
                                quiet=json_output)
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"Regularization study ({epochs} epochs each)")
    for c in ("variant", "best val acc", "best epoch", "train-val gap", "seconds"):
        table.add_column(c, justify="left" if c == "variant" else "right")
    for r in rows:
        table.add_row(r["variant"], f"{r['best_val_accuracy']:.4f}", str(r["best_epoch"]),
                      "" if r["train_val_gap"] is None else f"{r['train_val_gap']:+.4f}", str(r["seconds"]))
    Console().print(table)
    Console().print(f"Written: {out / 'study.md'}, {out / 'compare.png'}")
