"""`transferlab train`: fine-tune a model on a folder of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from ..errors import SettingError
from ..training.config import TrainConfig
from ._common import print_json, user_errors

_STRATEGY_HELP = ("freeze | unfreeze-from=K (layer index from `transferlab layers`, or a module name) | "
                  "unfreeze-last=N (stages) | full | two-phase. Default: freeze with pretrained weights, else full.")


def _number_or_pair(value: object) -> object:
    """'40' -> 40, '0.2' -> 0.2, '0.8,1.2' -> [0.8, 1.2], '1/255' -> 1/255; booleans and words pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "," in text:
        return [float(v) for v in text.split(",")]
    if "/" in text:
        num, den = text.split("/", 1)
        return float(num) / float(den)
    parsed = yaml.safe_load(text)
    return parsed


def _lr(value: str | None) -> float | str | None:
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise SettingError(f"--lr must be a number such as 1e-3, or 'auto'; got {value!r}.") from None


@user_errors
def train(
    data: Annotated[str | None, typer.Argument(help="Data folder: train/ + validation/ class folders, or class "
                                                    "folders split by --val-split.", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help="Model: efficientnet_lite0 (default), course_cnn, or any timm "
                                                   "name. See `transferlab models`.")] = None,
    weights: Annotated[str | None, typer.Option(help="imagenet, none, or a .safetensors/.pth file.")] = None,
    strategy: Annotated[str | None, typer.Option(help=_STRATEGY_HELP)] = None,
    unfreeze_from: Annotated[str | None, typer.Option(help="two-phase: unfreeze from this layer in phase 2 "
                                                           "(default: everything).")] = None,
    finetune_lr_factor: Annotated[float | None, typer.Option(help="two-phase: phase 2 lr = lr / this "
                                                                  "[default: 10].")] = None,
    finetune_epochs: Annotated[int | None, typer.Option(help="two-phase: epochs of phase 2 "
                                                             "[default: --epochs].")] = None,
    backbone_lr_mult: Annotated[float | None, typer.Option(help="Base lr = lr * this, e.g. 0.1 [default: 1].")] = None,
    layer_decay: Annotated[float | None, typer.Option(help="Per-layer lr decay of the base, e.g. 0.75.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs [default: 10].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per batch [default: 32].")] = None,
    lr: Annotated[str | None, typer.Option(help="Learning rate, or 'auto' (a range test) [default: 1e-3 "
                                                "freeze/two-phase, 1e-4 otherwise].")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam, adamw, sgd or rmsprop [default: adam].")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay / L2 [default: 0].")] = None,
    lr_schedule: Annotated[str | None, typer.Option(help="Learning decay: constant, step, exponential, cosine, "
                                                         "onecycle or plateau [default: constant].")] = None,
    warmup_epochs: Annotated[int | None, typer.Option(help="Linear warmup epochs [default: 0].")] = None,
    head_hidden: Annotated[list[int] | None, typer.Option(help="Hidden Dense(relu) layer of the head; repeat for "
                                                               "more, e.g. --head-hidden 256.")] = None,
    head_dropout: Annotated[float | None, typer.Option(help="Dropout rate in the head, e.g. 0.5.")] = None,
    head_batch_norm: Annotated[bool | None, typer.Option("--head-batch-norm/--no-head-batch-norm",
                                                         help="BatchNormalization in the head.")] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing, e.g. 0.1.")] = None,
    mixup: Annotated[float | None, typer.Option(help="MixUp alpha, e.g. 0.2 [default: off].")] = None,
    cutmix: Annotated[float | None, typer.Option(help="CutMix alpha, e.g. 1.0 [default: off].")] = None,
    class_weight: Annotated[str | None, typer.Option(help="none or balanced (for imbalanced folders).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size [default: the model's own].")] = None,
    augment: Annotated[str | None, typer.Option(help="Augmentation preset: none, course, flip, light or strong; "
                                                     "the Keras options below adjust it.")] = None,
    rotation_range: Annotated[str | None, typer.Option(help="Keras: random rotation in [-r, r] degrees.",
                                                       rich_help_panel="Augmentation (Keras names)")] = None,
    width_shift_range: Annotated[str | None, typer.Option(help="Keras: < 1 fraction of the width, >= 1 pixels.",
                                                          rich_help_panel="Augmentation (Keras names)")] = None,
    height_shift_range: Annotated[str | None, typer.Option(help="Keras: < 1 fraction of the height, >= 1 pixels.",
                                                           rich_help_panel="Augmentation (Keras names)")] = None,
    shear_range: Annotated[str | None, typer.Option(help="Keras: shear angle in degrees.",
                                                    rich_help_panel="Augmentation (Keras names)")] = None,
    zoom_range: Annotated[str | None, typer.Option(help="Keras: z means [1-z, 1+z]; or 'low,high'.",
                                                   rich_help_panel="Augmentation (Keras names)")] = None,
    horizontal_flip: Annotated[bool | None, typer.Option("--horizontal-flip/--no-horizontal-flip",
                                                         rich_help_panel="Augmentation (Keras names)")] = None,
    vertical_flip: Annotated[bool | None, typer.Option("--vertical-flip/--no-vertical-flip",
                                                       rich_help_panel="Augmentation (Keras names)")] = None,
    brightness_range: Annotated[str | None, typer.Option(help="Keras: 'low,high' brightness factors.",
                                                         rich_help_panel="Augmentation (Keras names)")] = None,
    contrast_range: Annotated[str | None, typer.Option(help="'low,high' contrast factors.",
                                                       rich_help_panel="Augmentation (Keras names)")] = None,
    noise_std: Annotated[str | None, typer.Option(help="Gaussian noise std, in units of the [0, 1] pixel range.",
                                                  rich_help_panel="Augmentation (Keras names)")] = None,
    fill_mode: Annotated[str | None, typer.Option(help="Keras: nearest, constant, reflect or wrap.",
                                                  rich_help_panel="Augmentation (Keras names)")] = None,
    rescale: Annotated[str | None, typer.Option(help="Keras: 1/255 accepted (the model's normalisation applies).",
                                                rich_help_panel="Augmentation (Keras names)")] = None,
    val_split: Annotated[float | None, typer.Option(help="Validation fraction without a validation folder "
                                                         "[default: 0.2].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [default: 42].")] = None,
    monitor: Annotated[str | None, typer.Option(help="val_accuracy or val_loss: best checkpoint and early "
                                                     "stopping.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs; 0 disables "
                                                      "[default: 5].")] = None,
    num_workers: Annotated[int | None, typer.Option(help="Data-loading processes [default: from CPU count].")] = None,
    feature_cache: Annotated[bool | None, typer.Option("--feature-cache/--no-feature-cache",
                                                       help="Train a frozen base's head on cached features "
                                                            "[default: on].")] = None,
    feature_cache_copies: Annotated[int | None, typer.Option(help="With --augment and freeze: N augmented feature "
                                                                  "copies per image, computed once [default: 0]."
                                                             )] = None,
    decoded_cache: Annotated[bool | None, typer.Option("--decoded-cache/--no-decoded-cache",
                                                       help="Decode and resize each image once [default: on]."
                                                       )] = None,
    channels_last: Annotated[bool | None, typer.Option("--channels-last/--no-channels-last",
                                                       help="Channels-last memory format [default: on].")] = None,
    precision: Annotated[str | None, typer.Option(help="auto, 32-true, bf16-mixed or 16-mixed.")] = None,
    stream: Annotated[bool | None, typer.Option("--stream/--no-stream", help="Stream DATA (a CSV/TSV/Parquet index, "
                                                "local or s3://...; shard folders always stream).")] = None,
    compile_model: Annotated[bool | None, typer.Option("--compile/--no-compile",
                                                       help="torch.compile the model (GPU speed; slow start).")] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto, cpu, gpu, ...")] = None,
    devices: Annotated[str | None, typer.Option(help="auto or a number of devices.")] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Machines in a multi-node DDP run (torchrun/SLURM).")] = None,
    subset: Annotated[int | None, typer.Option(help="At most this many training images per class (and a quarter "
                                                    "as many validation images): a quick run.")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Time budget for training; stops with the best "
                                                           "checkpoint so far.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder [default: runs/<model>-<date>-<time>].")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings; flags override it.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue this run folder from its last checkpoint "
                                                     "(optimizer, schedule, epoch and phase restored).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No console output.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the final metrics as JSON.")] = False,
) -> None:
    """Fine-tune a model on a folder of images and write a run folder (checkpoints, bundle, history, plots).

    Example: transferlab train cats_and_dogs_filtered --strategy two-phase --epochs 10 --out runs/cd
    """
    from ..training.fit import fit
    from ..training.fit import resume as resume_run

    if resume is not None:
        result = resume_run(resume, epochs=epochs, quiet=quiet or json_output)
    else:
        settings = TrainConfig.from_yaml(config).to_dict() if config else {}
        if devices is not None and devices.isdigit():
            devices = int(devices)
        flags = dict(data=data, model=model, weights=weights, strategy=strategy, unfreeze_from=unfreeze_from,
                     finetune_lr_factor=finetune_lr_factor, finetune_epochs=finetune_epochs,
                     backbone_lr_mult=backbone_lr_mult, layer_decay=layer_decay, epochs=epochs,
                     batch_size=batch_size, lr=_lr(lr), optimizer=optimizer, weight_decay=weight_decay,
                     lr_schedule=lr_schedule, warmup_epochs=warmup_epochs, head_hidden=head_hidden or None,
                     head_dropout=head_dropout, head_batch_norm=head_batch_norm, label_smoothing=label_smoothing,
                     mixup=mixup, cutmix=cutmix,
                     class_weight=class_weight, image_size=image_size, augment=augment, val_split=val_split,
                     seed=seed, monitor=monitor, patience=patience, num_workers=num_workers,
                     feature_cache=feature_cache, feature_cache_copies=feature_cache_copies,
                     decoded_cache=decoded_cache,
                     channels_last=channels_last, precision=precision, compile=compile_model, stream=stream,
                     accelerator=accelerator, devices=devices, num_nodes=num_nodes, subset=subset,
                     max_minutes=max_minutes, out=out)
        settings.update({k: v for k, v in flags.items() if v is not None})
        keras = dict(rotation_range=rotation_range, width_shift_range=width_shift_range,
                     height_shift_range=height_shift_range, shear_range=shear_range, zoom_range=zoom_range,
                     horizontal_flip=horizontal_flip, vertical_flip=vertical_flip, brightness_range=brightness_range,
                     contrast_range=contrast_range, noise_std=noise_std, fill_mode=fill_mode, rescale=rescale)
        keras = {k: _number_or_pair(v) for k, v in keras.items() if v is not None}
        if keras:
            base = settings.get("augment", "none")
            settings["augment"] = {**(base if isinstance(base, dict) else {"preset": base}), **keras}
        result = fit(TrainConfig.from_dict(settings), overwrite=overwrite, quiet=quiet or json_output)
    if json_output:
        print_json({"run_dir": str(result.run_dir), **result.metrics})
