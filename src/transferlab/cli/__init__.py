"""The `transferlab` command line: one small module per command, thin over the library."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import quietable
from .advise import advise
from .augment import augment
from .benchmark import benchmark
from .classify import classify
from .compare import compare
from .data import app as data_app
from .demo import demo
from .evaluate import evaluate
from .export import export
from .layers import layers
from .models import models
from .predict import predict
from .serve import serve
from .studio import studio
from .study import app as study_app
from .train import train

app = typer.Typer(
    name="transferlab",
    help="Turn a folder of images into an accurate image classifier by transfer learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(train)
app.command()(quietable(predict))
app.command()(quietable(classify))
app.command()(evaluate)
app.command()(quietable(compare))
app.command()(quietable(export))
app.command()(serve)
app.command()(studio)
app.command()(quietable(advise))
app.command()(quietable(models))
app.command()(quietable(layers))
app.command()(quietable(benchmark))
app.command()(augment)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")
app.command()(demo)


def _version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"transferlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Turn a folder of images into an accurate image classifier by transfer learning."""


def main() -> None:
    """Console-script entry point (tunes glibc's allocator first: 2-3x faster CPU inference, see
    docs/benchmarks.md)."""
    from .._runtime import tune_malloc

    tune_malloc()
    app()
