"""The progress bar with Keras' epoch numbering."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

__all__ = ["KerasProgressBar"]



class KerasProgressBar(RichProgressBar):
    """Lightning's rich progress bar with Keras' epoch numbering: 'Epoch 3/10' (1-based), and the phase of a
    two-phase run ('Phase 2, epoch 1/5')."""

    def __init__(self, phase: int | None = None) -> None:
        super().__init__()
        self.phase = phase

    def _get_train_description(self, current_epoch: int) -> str:  # Lightning's hook: 'Epoch 0/9'
        epoch = f"{current_epoch + 1}" + (f"/{self.trainer.max_epochs}" if self.trainer.max_epochs else "")
        text = f"Phase {self.phase}, epoch {epoch}" if self.phase else f"Epoch {epoch}"
        return f"{text:{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return {}  # the metrics are in the line each epoch prints (EpochLine): the bar stays one line
