"""Experiment tracking: `--logger tensorboard|mlflow|csv` (`train(..., logger="tensorboard")`) through Lightning's
loggers, fed one point per epoch from the run's history (the numbers of history.csv, the learning rate included),
with the epoch as the step, so a two-phase run's curves continue across phases instead of restarting.

Example:
    >>> loggers = make_loggers(["tensorboard"], "runs/cd")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from ..errors import SettingError, check_choice
from .callbacks.history import HistoryCallback
from .config import LOGGERS

__all__ = ["LOGGERS", "make_loggers", "EpochLogger"]

_EXTRAS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("sqlalchemy", "mlflow-skinny sqlalchemy alembic")}


def make_loggers(names: Sequence[str], run_dir: str | os.PathLike[str]) -> list[Logger]:
    """Lightning loggers by name, writing under the run folder: `tensorboard/` (open with
    `tensorboard --logdir RUN`), `mlflow.db` (`mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db`;
    MLFLOW_TRACKING_URI, when set, is used instead) and `csv/metrics.csv`."""
    from lightning.pytorch.loggers import CSVLogger

    run_dir = Path(run_dir)
    loggers: list[Logger] = []
    for name in dict.fromkeys(str(n).lower() for n in names):
        check_choice("logger", name, LOGGERS, where="train")
        if name in _EXTRAS:
            module, package = _EXTRAS[name]
            try:
                __import__(module)
            except ImportError:
                raise SettingError(f"--logger {name} needs the {package} package: pip install 'transferlab[tracking]' "
                                   f"(or pip install {package}).") from None
        if name == "csv":
            loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
        elif name == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="",
                                             default_hp_metric=False))
        else:
            from lightning.pytorch.loggers import MLFlowLogger

            loggers.append(_mlflow_logger(MLFlowLogger, run_dir))
    return loggers


def _mlflow_logger(MLFlowLogger: type, run_dir: Path) -> Logger:  # noqa: N803 - the class, imported late
    """MLflow's store `RUN/mlflow.db` (its path quoted in the URI: a folder named with '?', '#' or '%' stays that
    folder) and artifacts in `RUN/mlartifacts`, or MLFLOW_TRACKING_URI's store; opened now, so that a store that
    cannot be used is named before training starts instead of failing after the first epoch."""
    from urllib.parse import quote

    run_dir.mkdir(parents=True, exist_ok=True)
    given = os.environ.get("MLFLOW_TRACKING_URI")
    uri = given or "sqlite:///" + quote(str((run_dir / "mlflow.db").resolve()))
    for noisy in ("mlflow.store.db.utils", "alembic"):  # schema set-up lines on every new database
        logging.getLogger(noisy).setLevel(logging.WARNING)
    artifacts = None if given else (run_dir / "mlartifacts").resolve().as_uri()
    try:
        logger = MLFlowLogger(experiment_name="transferlab", run_name=run_dir.name, tracking_uri=uri,
                              artifact_location=artifacts)
        _ = logger.experiment, logger.run_id
    except Exception as e:  # noqa: BLE001 - MLflow and its database drivers raise many types for one problem
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        fix = ("Set MLFLOW_TRACKING_URI to a store MLflow can open (e.g. sqlite:///path/to/mlflow.db or "
               "http://host:5000), or unset it to keep the run's own RUN/mlflow.db." if given else
               "Check that the run folder is writable, or use --logger csv.")
        raise SettingError(f"--logger mlflow cannot open the tracking store {uri[:200]!r}: {first}. {fix}") from None
    return logger


class EpochLogger(Callback):
    """Sends each epoch's history row (loss, accuracy, val_loss, val_accuracy, lr, seconds) to `loggers`, with the
    run-wide epoch number as the step; the settings go in once as hyperparameters."""

    def __init__(self, history: HistoryCallback, loggers: Sequence[Logger], settings: dict[str, Any]) -> None:
        self.history, self.loggers, self.settings = history, list(loggers), settings
        self._sent_settings = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and not self._sent_settings:
            flat = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                    for k, v in self.settings.items()}
            for logger in self.loggers:
                logger.log_hyperparams(flat)
            self._sent_settings = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.history.rows:
            return
        row = self.history.rows[-1]
        values = {k: float(row[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
                  if row.get(k) is not None}
        values["phase"] = float(row.get("phase") or 1)
        for logger in self.loggers:
            logger.log_metrics(values, step=int(row["epoch"]))
            logger.save()

    def finish(self) -> None:
        for logger in self.loggers:
            logger.finalize("success")
