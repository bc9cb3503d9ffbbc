"""`transferlab train`: fine-tune a model on a folder of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import TrainConfig
from ._common import print_json, user_errors


@user_errors
def train(
    data: Annotated[str | None, typer.Argument(help="Data folder: train/ + validation/ class folders, or class "
                                                    "folders split by --val-split.", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help="Model: efficientnet_lite0 (default), course_cnn, or any timm "
                                                   "name. See `transferlab models`.")] = None,
    weights: Annotated[str | None, typer.Option(help="imagenet, none, or a .safetensors/.pth file.")] = None,
    strategy: Annotated[str | None, typer.Option(help="freeze (train the head only) or full. Default: freeze "
                                                      "with pretrained weights, else full.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs [default: 10].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per batch [default: 32].")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate [default: 1e-3 freeze, 1e-4 otherwise].")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam, adamw, sgd or rmsprop [default: adam].")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay [default: 0].")] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size [default: the model's own].")] = None,
    augment: Annotated[str | None, typer.Option(help="Augmentation preset: none or flip.")] = None,
    val_split: Annotated[float | None, typer.Option(help="Validation fraction without a validation folder "
                                                         "[default: 0.2].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [default: 42].")] = None,
    monitor: Annotated[str | None, typer.Option(help="val_accuracy or val_loss: best checkpoint and early "
                                                     "stopping.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs; 0 disables "
                                                      "[default: 5].")] = None,
    num_workers: Annotated[int | None, typer.Option(help="Data-loading processes [default: from CPU count].")] = None,
    precision: Annotated[str | None, typer.Option(help="auto, 32-true, bf16-mixed or 16-mixed.")] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto, cpu, gpu, ...")] = None,
    devices: Annotated[str | None, typer.Option(help="auto or a number of devices.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder [default: runs/<model>-<date>-<time>].")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings; flags override it.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No console output.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the final metrics as JSON.")] = False,
) -> None:
    """Fine-tune a model on a folder of images and write a run folder (checkpoints, bundle, history, plots).

    Example: transferlab train cats_and_dogs_filtered --epochs 10 --out runs/cd
    """
    from ..train import fit
    from ..train import resume as resume_run

    if resume:
        if not out:
            raise ValueError("--resume needs --out RUN: the folder of the run to continue.")
        result = resume_run(out, epochs=epochs, quiet=quiet or json_output)
    else:
        settings = TrainConfig.from_yaml(config).to_dict() if config else {}
        if devices is not None and devices.isdigit():
            devices = int(devices)
        flags = dict(data=data, model=model, weights=weights, strategy=strategy, epochs=epochs, batch_size=batch_size,
                     lr=lr, optimizer=optimizer, weight_decay=weight_decay, image_size=image_size, augment=augment,
                     val_split=val_split, seed=seed, monitor=monitor, patience=patience, num_workers=num_workers,
                     precision=precision, accelerator=accelerator, devices=devices, out=out)
        settings.update({k: v for k, v in flags.items() if v is not None})
        result = fit(TrainConfig.from_dict(settings), overwrite=overwrite, quiet=quiet or json_output)
    if json_output:
        print_json({"run_dir": str(result.run_dir), **result.metrics})
