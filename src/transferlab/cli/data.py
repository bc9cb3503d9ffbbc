"""`transferlab data get|info`: download named data sets; describe a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, quietable, user_errors

app = typer.Typer(help="Get named data sets and inspect data folders.", no_args_is_help=True)


@app.command("get")
@user_errors
def get(
    name: Annotated[str, typer.Argument(help="cats_and_dogs_filtered or cifar10.")],
    out: Annotated[Path, typer.Option(help="Folder to download into.")] = Path("data"),
    dir: Annotated[Path | None, typer.Option("--dir", hidden=True, help="Old spelling of --out.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Download a named data set (resumable, checksum-verified) and print its folder.

    Example: transferlab data get cats_and_dogs_filtered --out data
    """
    from ..data.download import get_dataset

    folder = get_dataset(name, dir or out, quiet=quiet)
    Console(soft_wrap=True).print(f"{name}: {folder}", highlight=False)


@app.command("info")
@quietable
@user_errors
def info(
    data: Annotated[str, typer.Argument(help="Data folder, CSV or archive.")],
    val_split: Annotated[float, typer.Option(help="Validation fraction without a validation folder.")] = 0.2,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Images per class and split, image sizes, unreadable files, duplicates and train/validation leakage."""
    from ..data.info import data_info

    report = data_info(data, val_split=val_split)
    if json_output:
        print_json(report)
        return
    console = Console()
    console.print(f"{report['root']} ({report['layout']})", highlight=False, markup=False)
    table = Table()
    for col in ("class", "train", "validation"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name in report["classes"]:
        table.add_row(name, str(report["counts"]["train"][name]), str(report["counts"]["validation"][name]))
    table.add_row("[bold]total", str(report["num_train"]), str(report["num_validation"]))
    console.print(table)
    w, h = report["image_size"]["width"], report["image_size"]["height"]
    if w:
        console.print(f"Image width {w['min']}-{w['max']} (median {w['median']}), height {h['min']}-{h['max']} "
                      f"(median {h['median']})")
    console.print(f"Skipped files: {len(report['skipped'])}; groups of identical images: "
                  f"{len(report['duplicates'])}", highlight=False)
    for item in report["skipped"][:10]:
        console.print(f"  [yellow]{item['path']}[/]: {item['reason']}", highlight=False)
    for group in report["duplicates"][:10]:  # name the files: the user has to decide which copy goes
        console.print("  identical: " + ", ".join(f"{d['path']} ({d['split']}, {d['label']})" for d in group),
                      highlight=False)
    if len(report["duplicates"]) > 10:
        console.print(f"  ... and {len(report['duplicates']) - 10} more groups (all in `data info --json`)")
    for warning in report["warnings"]:
        console.print(f"[bold yellow]Warning:[/] {warning}")


@app.command("shard")
@quietable
@user_errors
def shard(
    data: Annotated[str, typer.Argument(help="Data folder (or CSV index) to pack.")],
    out: Annotated[Path, typer.Option(help="Folder for the tar shards and classes.json.")] = Path("shards"),
    shard_size: Annotated[int, typer.Option(help="Images per shard.", min=1, max=10_000_000)] = 1000,
    split: Annotated[str, typer.Option(help="'train' or 'validation'.")] = "train",
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Pack images into WebDataset-style tar shards (KEY.jpg + KEY.cls) that stream without a folder walk.

    Example: transferlab data shard cats_and_dogs_filtered --out shards/ --shard-size 1000
    """
    from ..data.shards import write_shards

    summary = write_shards(data, out, shard_size=shard_size, split=split)
    if json_output:
        print_json(summary)
        return
    Console().print(f"{summary['images']} {split} images in {len(summary['shards'])} shard(s) of up to {shard_size} "
                    f"in {out} (classes.json: {len(summary['classes'])} classes).")
