"""`transferlab classify`: photos into the 1000 ImageNet classes (the course's Exercise 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import MissingFileError
from ._common import err_console, print_json, print_predictions, user_errors


@user_errors
def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    model: Annotated[str, typer.Option(help="Catalog name, Keras spelling or timm name.")] = "efficientnet_lite0",
    top_k: Annotated[int, typer.Option(help="Labels per image (Keras' decode_predictions top).", min=1,
                                         max=1000)] = 3,
    top: Annotated[int | None, typer.Option("--top", hidden=True, help="Old spelling of --top-k.", min=1,
                                             max=1000)] = None,
    weights: Annotated[str | None, typer.Option(help="'imagenet' (default) or a weights file.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw the images with their top-1 label into this PNG.")] = None,
    engine: Annotated[str, typer.Option(help="'auto' (fastest correct path) or 'fp32' (eager float32).")] = "auto",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
) -> None:
    """Print each image's top ImageNet classes: WordNet id, class name and probability.

    Works offline with the bundled EfficientNet-Lite0; other models need their weights cached or `--weights FILE`.

    Example: transferlab classify elephant.jpg --top-k 3 --plot grid.png
    """
    from ..data.sources import list_images
    from ..inference.classify import imagenet_predictor

    top = top if top is not None else top_k
    if top < 1:
        raise typer.BadParameter(f"--top-k must be at least 1; got {top}.")
    paths = list_images(images)
    if not paths:
        raise MissingFileError(f"No image files found in {', '.join(map(str, images))}.")
    predictor = imagenet_predictor(model, weights, engine=engine)
    results = predictor.predict(paths, top_k=top)
    name = getattr(predictor, "bundle", predictor).metadata["model"]
    if plot:
        from ..evaluation.grids import prediction_grid

        prediction_grid(results, plot, title=f"{name} on ImageNet classes")
    if json_output:
        print_json(results)
    else:
        print_predictions(results, f"ImageNet classes ({name})", wnid=True)
        if plot:
            Console().print(f"Grid: {plot}")
    errors = [r for r in results if "error" in r]
    if errors:
        err_console.print(f"[yellow]{len(errors)} of {len(results)} image(s) could not be read.")
    if len(errors) == len(results):
        raise typer.Exit(code=1)
