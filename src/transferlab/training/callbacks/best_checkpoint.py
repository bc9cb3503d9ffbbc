"""The best checkpoint of a phase, by the run's one definition of "best" (`runs.history.is_better`)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from ...runs.history import MONITORS, is_better, metric_row

__all__ = ["BestCheckpoint"]


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (one file, `save_top_k=1`) that keeps the best epoch as `runs.history` defines
    it: the monitored metric, and on a tie the other validation metric (an epoch that ties the best accuracy at a
    lower val_loss replaces it; Lightning alone keeps the first of equals).

    Args:
        dirpath: The run folder.
        monitor: 'val_accuracy' or 'val_loss'.
        filename: The file's stem (`runs.folder.RunFolder.checkpoint`).

    Example:
        >>> BestCheckpoint(dirpath="runs/cd", monitor="val_accuracy", filename="best")  # doctest: +SKIP
    """

    def __init__(self, dirpath: str | Any, monitor: str, filename: str) -> None:
        super().__init__(dirpath=dirpath, filename=filename, monitor=monitor, mode=MONITORS[monitor], save_top_k=1,
                         auto_insert_metric_name=False, enable_version_counter=False)
        self.best_row: dict[str, Any] | None = None

    def check_monitor_top_k(self, trainer: L.Trainer, current: Any = None) -> bool:
        if current is None:
            return False
        row = metric_row(trainer.callback_metrics)
        better = is_better(row, self.best_row, self.monitor)
        better = trainer.strategy.reduce_boolean_decision(bool(better))  # every DDP rank decides alike
        if better:
            self.best_row = row
        return better

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_row": self.best_row}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_row = state_dict.get("best_row")
