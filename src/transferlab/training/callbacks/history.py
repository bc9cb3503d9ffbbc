"""The per-epoch history callback (history.csv)."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from ...runs.folder import RunFolder
from ...runs.history import metric_row

__all__ = ["HistoryCallback"]



class HistoryCallback(Callback):
    """Writes `history.csv` (one row per epoch, Keras' `history.history` columns plus lr, phase, seconds)."""

    def __init__(self, run: RunFolder, rows: list[dict[str, Any]] | None = None) -> None:
        self.run = run
        self.rows = list(rows or [])
        self.phase = 1
        self.offset = 0
        self._start = 0.0
        self._lr: float | None = None

    def start_phase(self, phase: int) -> None:
        """Epochs of a later phase continue the numbering after the earlier phases' epochs."""
        self.phase = phase
        self.offset = sum(1 for r in self.rows if int(r.get("phase") or 1) < phase)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        # the rate this epoch trains with (per-step schedules: its first step's); read at the end it would be the
        # next epoch's, after the scheduler stepped
        self._lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, Any] = {"epoch": self.offset + trainer.current_epoch + 1, "phase": self.phase,
                               **metric_row(trainer.callback_metrics)}
        row["lr"] = self._lr
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        self.rows = [r for r in self.rows if int(r["epoch"]) < row["epoch"]] + [row]
        if trainer.is_global_zero:
            self.run.write_history(self.rows)
