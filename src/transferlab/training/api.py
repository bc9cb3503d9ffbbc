"""The notebook spelling of training: `train(data, model=..., strategy=..., epochs=..., **settings)` and
`load_run(folder)`, over the same `fit` as the command line."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from ..errors import SettingError
from ..runs.folder import RunFolder
from .config import KERAS_NAMES, TrainConfig, read_run_config
from .fit import fit
from .result import TrainResult

__all__ = ["train", "load_run"]


def train(data: str | os.PathLike[str], model: str | None = None, strategy: str | None = None,
          epochs: int | None = None, *, config: str | os.PathLike[str] | None = None,
          out: str | os.PathLike[str] | None = None, overwrite: bool = False, quiet: bool = False,
          callbacks: Sequence[Callback] | None = None, logger: str | Logger | Sequence[str | Logger] | None = None,
          **settings: Any) -> TrainResult:
    """Trains a classifier on a folder of images: the notebook spelling of `fit(TrainConfig(...))`.

    Every setting of `TrainConfig` is a keyword (`lr=1e-4`, `augment={"rotation_range": 40}`, `head_hidden=[256]`,
    `unfreeze_from="keras:143"`, ...); a misspelt one is an error that names the right one. In a notebook, each
    epoch adds a row to a table, and the returned result shows its metrics, history plot and validation report.

    Args:
        data: Folder with train/ and validation/ class folders, or one folder of class folders.
        model: A name of `transferlab.list_models()` (e.g. 'efficientnet_lite0', 'course_cnn', 'resnet50') or any
            timm architecture, or 'hf:/saved/folder' for a Hugging Face model; default 'efficientnet_lite0'.
        strategy: 'freeze', 'two-phase', 'unfreeze-from=keras:143', 'unfreeze-last=2', 'full' or 'auto'; default
            'freeze' with pretrained weights, else 'full'.
        epochs: Maximum number of epochs (of each phase, for 'two-phase'); default 10.
        config: A YAML file of settings, or a recipe shipped with transferlab by name (e.g. "ex1_lite0_freeze"); the
            keywords given override it.
        out: Run folder; default runs/<model>-<date>-<time>.
        overwrite: Replace an existing run folder of that name.
        quiet: No output while training.
        callbacks: More Lightning callbacks.
        logger: 'tensorboard', 'mlflow', 'csv' (or several), and/or Lightning Logger objects.
        **settings: Any other `TrainConfig` setting.

    Example:
        >>> result = transferlab.train("cats_and_dogs_filtered", model="efficientnet_lite0",
        ...                            strategy="two-phase", epochs=10)  # doctest: +SKIP
        >>> result.metrics["best_val_accuracy"]  # doctest: +SKIP
        0.97
    """
    given = [logger] if isinstance(logger, (str, Logger)) else list(logger or [])
    names = [g for g in given if isinstance(g, str)]
    objects = [g for g in given if not isinstance(g, str)]
    if "logger" in settings:
        raise SettingError("Pass trackers as train(..., logger='tensorboard') (or a list), once.")
    base = TrainConfig.from_yaml(config).to_dict() if config is not None else {}
    given_here = {k: v for k, v in (("model", model), ("strategy", strategy), ("epochs", epochs)) if v is not None}
    if out is not None:
        given_here["out"] = str(out)
    if names:
        given_here["logger"] = names
    keyword = {KERAS_NAMES.get(k, k): v for k, v in settings.items()}  # Keras' learning_rate= is lr=
    if len(keyword) < len(settings):
        raise SettingError(f"A setting is given twice, under its name and its Keras name: {sorted(settings)}.")
    settings = {**base, **given_here, **keyword, "data": str(data)}
    return fit(TrainConfig.from_dict(settings), overwrite=overwrite, quiet=quiet, callbacks=callbacks,
               logger=objects or None)


def load_run(run_dir: str | os.PathLike[str]) -> TrainResult:
    """Opens a finished (or interrupted) run folder as a `TrainResult`: its metrics, history plot and report show
    in a notebook, and `.evaluate()`, `.predict()` work as right after training.

    Example:
        >>> result = load_run("runs/cd")  # doctest: +SKIP
    """
    folder = RunFolder(run_dir)
    return TrainResult(folder.path, folder.metrics(), read_run_config(run_dir), None)
