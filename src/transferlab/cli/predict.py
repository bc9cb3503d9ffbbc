"""`transferlab predict`: classify new images with a trained run or bundle."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

import typer

from .._io import write_text
from ..errors import MissingFileError
from ._common import err_console, print_json, print_predictions, user_errors


@user_errors
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder (or bundle folder / model.safetensors).")],
    images: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    top_k: Annotated[int, typer.Option(help="Labels per image.", min=1, max=1000)] = 3,
    out: Annotated[Path | None, typer.Option(help="Also write the predictions to this CSV file.")] = None,
    output: Annotated[Path | None, typer.Option("--output", hidden=True, help="Old spelling of --out.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw the images with their top-1 label into this PNG.")] = None,
    engine: Annotated[str, typer.Option(help="'auto' (the run's ONNX export if it is current and onnxruntime is "
                                             "installed, else PyTorch), 'pytorch' (fastest correct PyTorch path), "
                                             "'fp32' (eager float32) or 'onnx'.")] = "auto",
    tta: Annotated[str, typer.Option(help="Test-time augmentation: 'none', 'flip' (average with the mirror "
                                          "image) or 'ten-crop' (centre and corner crops, each mirrored).")
                   ] = "none",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
) -> None:
    """Print each image's top-k labels with probabilities.

    Example: transferlab predict runs/cd my_photos/ --top-k 2
    """
    from ..data.sources import list_images
    from ..inference.loading import check_tta, load_predictor

    if top_k < 1:
        raise typer.BadParameter(f"--top-k must be at least 1; got {top_k}.")
    predictor = load_predictor(run, engine=engine)
    paths = list_images(images)
    if not paths:
        raise MissingFileError(f"No image files found in {', '.join(map(str, images))}.")
    check_tta(tta, predictor, where="predict")
    results = predictor.predict(paths, top_k=top_k, tta=tta)
    out = out or output
    if out:
        _write_csv(out, results, top_k)
    if plot:
        from ..evaluation.grids import prediction_grid

        prediction_grid(results, plot)
    if json_output:
        print_json(results)
    else:
        print_predictions(results, f"Predictions of {run}, engine: {predictor.engine_name}")
    errors = [r for r in results if "error" in r]
    if errors:
        err_console.print(f"[yellow]{len(errors)} of {len(results)} image(s) could not be read.")
    if len(errors) == len(results):
        raise typer.Exit(code=1)


def _write_csv(path: Path, results: list[dict], top_k: int) -> None:
    fields = ["path"] + [f"{kind}_{i}" for i in range(1, top_k + 1) for kind in ("label", "probability")] + ["error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in results:
        row = {"path": r["path"], "error": r.get("error", "")}
        for i, t in enumerate(r.get("top", []), start=1):
            row[f"label_{i}"], row[f"probability_{i}"] = t["label"], t["probability"]
        writer.writerow(row)
    write_text(path, buf.getvalue())
