"""Tells the training set which epoch starts."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

__all__ = ["EpochData"]



class EpochData(Callback):
    """Calls the training set's `set_epoch` as each epoch starts: `FeatureCopies` reads that epoch's copy, a
    stream reshuffles (before the DataLoader's workers copy the dataset)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(trainer.current_epoch)
