"""Stops a phase as soon as the training loss is no longer a finite number (a learning rate far too high)."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

__all__ = ["FiniteLoss"]


class FiniteLoss(Callback):
    """Sets `trainer.should_stop` at the first batch whose loss is NaN or infinite and records where.

    Attributes:
        diverged: (epoch, step, loss) of that batch, or None.
    """

    def __init__(self) -> None:
        self.diverged: tuple[int, int, float] | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or self.diverged is not None:
            return
        value = float(loss.detach())
        if not math.isfinite(value):
            self.diverged = (trainer.current_epoch + 1, trainer.global_step, value)
            trainer.should_stop = True
