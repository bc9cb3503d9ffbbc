"""`transferlab demo`: fine-tune the bundled model on the embedded digits data set, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ._common import print_json, user_errors


def _free_folder(base: Path) -> Path:
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def default_data_home() -> Path:
    """Where transferlab keeps data sets: $TRANSFERLAB_HOME or ~/.cache/transferlab."""
    from .._runtime import transferlab_home

    return transferlab_home()


@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Run folder (a free name is picked if it exists).")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option(help="Epochs.", min=1, max=1000)] = 4,
    image_size: Annotated[int, typer.Option(help="Input size (the digits are 8x8 pixels).", min=8,
                                              max=1024)] = 64,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the result line.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the final metrics as JSON.")] = False,
) -> None:
    """Fine-tune the bundled ImageNet EfficientNet-Lite0 on scikit-learn's handwritten digits (offline).

    Writes the 1,797 digits as an image folder with a fixed stratified train/validation split, fine-tunes
    every layer, and prints the validation accuracy and the run folder.
    """
    from ..data.demo import write_digits
    from ..training.config import TrainConfig
    from ..training.fit import fit

    data = write_digits(default_data_home() / "datasets" / "digits")
    run_dir = _free_folder(out)
    config = TrainConfig(data=str(data), out=str(run_dir), model="efficientnet_lite0", strategy="full",
                         epochs=epochs, image_size=image_size, lr=1e-3, batch_size=32, seed=0)
    result = fit(config, quiet=quiet or json_output)
    m = result.metrics
    if json_output:
        print_json({"run_dir": str(result.run_dir), "data": str(data), **m})
        return
    Console().print(f"[bold green]Demo done:[/] validation accuracy {m['best_val_accuracy']:.4f} (best epoch "
                    f"{m['best_epoch']}) in {m['wall_seconds']:.0f} s. Run folder: {result.run_dir}\n"
                    f"Try: transferlab predict {result.run_dir} {data / 'validation' / '7'} --top-k 3")
