"""The LightningModule: loss, Keras' metric names, the optimizer and schedule of a phase."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ..data.folder import DataSplits
from ..data.transforms import BatchTransform
from ..models.transfer import TransferNet
from .config import TrainConfig
from .optim import build_optimizer, build_scheduler, parameter_groups
from .strategies import keep_frozen_batchnorm_in_eval

__all__ = ["TransferModule", "class_weights"]



def class_weights(data: DataSplits, mode: str) -> torch.Tensor | None:
    """'balanced' class weights n / (k * n_c) from the training counts (scikit-learn's formula), else None."""
    if mode != "balanced":
        return None
    counts = data.counts()["train"]
    n, k = sum(counts.values()), len(data.classes)
    return torch.tensor([n / (k * max(1, counts.get(c, 0))) for c in data.classes], dtype=torch.float32)


class TransferModule(L.LightningModule):
    """Trains a model (or just its head, on cached features) with cross-entropy, or binary cross-entropy
    for a single output; logs Keras' metric names `loss`, `accuracy`, `val_loss`, `val_accuracy`.

    Args:
        model: A `TransferNet`, or any module mapping inputs to logits (a head on cached features).
        num_classes: Number of classes.
        config: The run's settings (optimizer, lr schedule, label smoothing, ...).
        lr: Learning rate of this phase.
        weights: Per-class loss weights, or None.
        batch_transform: Applied to uint8 training batches once they are on the device (augmentation,
            normalisation, MixUp/CutMix); see `BatchTransform`.
        mix_cached: Apply its MixUp/CutMix to the cached training tensors (features or boundary activations) too.
    """

    def __init__(self, model: nn.Module, num_classes: int, config: TrainConfig, lr: float,
                 weights: torch.Tensor | None = None, batch_transform: BatchTransform | None = None,
                 mix_cached: bool = False) -> None:
        super().__init__()
        self.model = model
        self.batch_transform = batch_transform
        self.mix_cached = mix_cached and batch_transform is not None and batch_transform.mix is not None
        self.config = config
        self.lr = lr
        self.register_buffer("class_weights", weights if weights is not None else torch.ones(num_classes),
                             persistent=False)
        self.train_accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_loss = MeanMetric()  # weighted by images, reduced exactly across DDP ranks
        self.train_loss = MeanMetric()  # the epoch's training loss over every rank's images, not rank 0's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, y = batch
        if x.dtype == torch.uint8:  # raw training images: augment and normalise on the device
            if self.batch_transform is None:
                raise RuntimeError("A uint8 image batch reached the model without a batch_transform.")
            return self.batch_transform(x, y)
        if self.mix_cached and self.trainer.training:  # manifold mixup: cached training tensors, not images
            return self.batch_transform.mix_tensors(x, y)
        return batch

    def train(self, mode: bool = True) -> TransferModule:
        super().train(mode)
        if mode:
            keep_frozen_batchnorm_in_eval(self.model)
        return self

    def _loss_and_preds(self, logits: torch.Tensor, y: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if y.dim() == 2:  # soft labels from MixUp/CutMix, smoothed as hard labels would be
            if train and self.config.label_smoothing:
                y = y * (1 - self.config.label_smoothing) + self.config.label_smoothing / y.shape[-1]
            if logits.shape[-1] == 1:
                logit = logits[:, 0].float()
                return F.binary_cross_entropy_with_logits(logit, y[:, 1].float()), (logit > 0).long()
            loss = -(y * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()
            return loss, logits.argmax(dim=-1)
        smoothing = self.config.label_smoothing if train else 0.0
        if logits.shape[-1] == 1:  # the course CNN's Dense(1, sigmoid): binary cross-entropy
            logit = logits[:, 0].float()
            target = y.float() * (1 - smoothing) + 0.5 * smoothing
            weight = self.class_weights[y]
            return F.binary_cross_entropy_with_logits(logit, target, weight=weight), (logit > 0).long()
        loss = F.cross_entropy(logits.float(), y, weight=self.class_weights, label_smoothing=smoothing)
        return loss, logits.argmax(dim=-1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss, preds = self._loss_and_preds(self(x), y, train=True)
        y = y.argmax(dim=-1) if y.dim() == 2 else y  # MixUp/CutMix: accuracy against the dominant label
        self.train_accuracy(preds, y)
        self.train_loss.update(loss.detach(), weight=len(y))
        self.log("loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("accuracy", self.train_accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        loss, preds = self._loss_and_preds(logits, y, train=False)
        self.val_accuracy(preds, y)
        self.val_loss.update(loss.detach(), weight=len(y))
        self.log("val_loss", self.val_loss, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("val_accuracy", self.val_accuracy, on_epoch=True, prog_bar=True, batch_size=len(y))

    def configure_optimizers(self) -> Any:
        cfg = self.config
        if isinstance(self.model, TransferNet):
            groups = parameter_groups(self.model, self.lr, cfg.weight_decay, cfg.backbone_lr_mult, cfg.layer_decay)
        else:
            groups = [{"params": [p for p in self.model.parameters() if p.requires_grad], "lr": self.lr,
                       "weight_decay": cfg.weight_decay, "name": "head"}]
        optimizer = build_optimizer(groups, cfg.optimizer, self.lr)
        steps = int(self.trainer.estimated_stepping_batches) if cfg.lr_schedule == "onecycle" else 0
        return build_scheduler(optimizer, cfg, self.trainer.max_epochs, steps)
