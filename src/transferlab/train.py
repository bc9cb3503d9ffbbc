"""Training: the Lightning module, the phases of a run, the run folder, and `fit` from a TrainConfig to a bundle."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from . import __version__
from ._io import atomic_path, distributed_world, is_rank_zero, write_json, write_text, write_yaml
from .boundary import BoundaryNet, Prefix, boundary_stage
from .bundle import save_bundle
from .config import MONITORS, TrainConfig
from .data.augment import resolve_augment
from .data.datasets import ImageListDataset, ImageLoader
from .data.decoded import DecodedCache
from .data.folder import DataSplits, load_image_folder
from .data.stream import StreamSource, is_stream_source, open_stream
from .data.transforms import BatchTransform, Preprocessing, eval_transform, train_transform, train_uint8_transform
from .features import cached_features, tune_malloc, weights_digest
from .finetune import (
    Strategy,
    apply_strategy,
    count_parameters,
    keep_frozen_batchnorm_in_eval,
    parameter_groups,
    parse_strategy,
)
from .models import get_model_info
from .models.transfer import HeadConfig, TransferNet, build_classifier
from .plots import plot_history

__all__ = ["TransferModule", "TrainResult", "fit", "resume", "resolve_config", "HISTORY_FIELDS"]

DECODED_CACHE_LIMIT = 8 * 1024**3  # bytes of decoded images kept per split
HISTORY_FIELDS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


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
    """

    def __init__(self, model: nn.Module, num_classes: int, config: TrainConfig, lr: float,
                 weights: torch.Tensor | None = None, batch_transform: BatchTransform | None = None) -> None:
        super().__init__()
        self.model = model
        self.batch_transform = batch_transform
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
        return batch

    def train(self, mode: bool = True) -> TransferModule:
        super().train(mode)
        if mode:
            keep_frozen_batchnorm_in_eval(self.model)
        return self

    def _loss_and_preds(self, logits: torch.Tensor, y: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if y.dim() == 2:  # soft labels from MixUp/CutMix
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
        if cfg.optimizer == "adam":
            optimizer = torch.optim.Adam(groups, lr=self.lr)
        elif cfg.optimizer == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=self.lr)
        elif cfg.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=0.9)
        else:
            optimizer = torch.optim.RMSprop(groups, lr=self.lr)
        steps = int(self.trainer.estimated_stepping_batches) if cfg.lr_schedule == "onecycle" else 0
        return build_scheduler(optimizer, cfg, self.trainer.max_epochs, steps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, epochs: int, total_steps: int) -> Any:
    """Lightning's optimizer config for the course's "learning decay" (`lr_schedule`) with optional warmup."""
    sched = torch.optim.lr_scheduler
    warmup = min(cfg.warmup_epochs, max(0, epochs - 1))
    if cfg.lr_schedule == "onecycle":
        scheduler = sched.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                     total_steps=max(1, total_steps),
                                     pct_start=(warmup / epochs) if warmup else 0.3)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
    if cfg.lr_schedule == "plateau":
        scheduler = sched.ReduceLROnPlateau(optimizer, mode=MONITORS[cfg.monitor], factor=0.2, patience=2)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": cfg.monitor}}
    main_epochs = max(1, epochs - warmup)
    if cfg.lr_schedule == "step":
        main = sched.StepLR(optimizer, step_size=max(1, main_epochs // 3), gamma=0.1)
    elif cfg.lr_schedule == "exponential":
        main = sched.ExponentialLR(optimizer, gamma=0.9)
    elif cfg.lr_schedule == "cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=main_epochs, eta_min=0.0)
    else:
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup:
        ramp = sched.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
        main = sched.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": main, "interval": "epoch"}}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it: a crash never leaves a broken .ckpt."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike[str],
                        storage_options: Any | None = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class HistoryCallback(Callback):
    """Writes `history.csv` (one row per epoch, Keras' `history.history` columns plus lr, phase, seconds)."""

    def __init__(self, path: Path, rows: list[dict[str, Any]] | None = None) -> None:
        self.path = path
        self.rows = list(rows or [])
        self.phase = 1
        self.offset = 0
        self._start = 0.0

    def start_phase(self, phase: int) -> None:
        """Epochs of a later phase continue the numbering after the earlier phases' epochs."""
        self.phase = phase
        self.offset = sum(1 for r in self.rows if int(r.get("phase") or 1) < phase)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": self.offset + trainer.current_epoch + 1, "phase": self.phase}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            row[key] = round(float(metrics[key]), 6) if key in metrics else None
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        self.rows = [r for r in self.rows if int(r["epoch"]) < row["epoch"]] + [row]
        if trainer.is_global_zero:
            write_history(self.path, self.rows)


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """Writes history rows as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def read_history(path: Path) -> list[dict[str, Any]]:
    """Reads `history.csv` back into rows of numbers (empty cells become None)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(f)]
    for row in rows:
        row["epoch"] = int(row["epoch"])
        row["phase"] = int(row.get("phase") or 1)
    return rows


@dataclass
class TrainResult:
    """What `fit` returns: the run folder and the final metrics (also in `metrics.json`)."""

    run_dir: Path
    metrics: dict[str, Any]
    config: TrainConfig
    data: DataSplits | StreamSource


@dataclass(frozen=True)
class Phase:
    """One `trainer.fit` of a run: its strategy, learning rate, epochs and checkpoint names."""

    index: int
    strategy: Strategy
    lr: float
    epochs: int
    best_name: str
    last_name: str


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fills in every `None` setting from the model (weights, strategy, lr, workers, out)."""
    config = replace(config).validate()
    if config.strategy == "auto" or config.lr == "auto":
        from .advise import advise

        if config.stream or (config.data and is_stream_source(config.data)):
            raise ValueError("--strategy auto and --lr auto probe a listed sample of the data; they do not apply to "
                             "streamed data. Run `transferlab advise` on a folder sample, then pass what it says.")

        advice = advise(config.data, config.model, config.weights, seed=config.seed)
        config = replace(config, strategy=advice.strategy if config.strategy == "auto" else config.strategy,
                         lr=advice.lr if config.lr == "auto" else config.lr, advice=advice.to_dict())
    info = get_model_info(config.model)
    weights = config.weights or ("imagenet" if info.has_pretrained else "none")
    strategy = parse_strategy(config.strategy or ("freeze" if weights != "none" else "full"))
    if strategy.kind != "full" and weights == "none":
        raise ValueError(
            f"strategy='{strategy}' keeps part of the base frozen, which needs pretrained weights, but "
            "weights='none'. Use `--strategy full` to train from scratch, or pretrained weights."
        )
    lr = config.lr if config.lr is not None else (1e-3 if strategy.kind in ("freeze", "two-phase") else 1e-4)
    workers = config.num_workers
    if workers is None:
        workers = min(4, max(0, (os.cpu_count() or 1) // 2))
    out = config.out or str(Path("runs") / f"{config.model}-{datetime.now():%Y%m%d-%H%M%S}")
    return replace(config, weights=str(weights), strategy=str(strategy), lr=float(lr), num_workers=int(workers),
                   out=out, finetune_epochs=config.finetune_epochs or config.epochs)


def _phases(config: TrainConfig) -> list[Phase]:
    strategy = parse_strategy(config.strategy)
    if strategy.kind != "two-phase":
        return [Phase(1, strategy, config.lr, config.epochs, "best", "last")]
    second = Strategy("full")
    if config.unfreeze_from is not None:
        second = Strategy("unfreeze-from", str(config.unfreeze_from))
    return [Phase(1, Strategy("freeze"), config.lr, config.epochs, "best-phase1", "last-phase1"),
            Phase(2, second, config.lr / config.finetune_lr_factor, config.finetune_epochs or config.epochs,
                  "best-phase2", "last-phase2")]


def _prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        if resume:
            return
        if not overwrite:
            raise FileExistsError(
                f"Output folder '{run_dir}' already exists and is not empty. Pass --overwrite to replace it, "
                f"--resume {run_dir} to continue that run, or choose another --out."
            )
        shutil.rmtree(run_dir)
    elif resume:
        raise FileNotFoundError(f"Cannot resume: run folder '{run_dir}' does not exist or is empty.")
    run_dir.mkdir(parents=True, exist_ok=True)


def _precision(config: TrainConfig) -> str:
    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available() and config.accelerator in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _environment() -> dict[str, str]:
    return {"transferlab": __version__, "torch": str(torch.__version__), "lightning": str(L.__version__),
            "python": platform.python_version(), "platform": platform.platform(),
            "cuda": str(torch.cuda.is_available())}


def feature_cache_dir() -> Path:
    """Where cached features live: $TRANSFERLAB_HOME/features (default ~/.cache/transferlab/features)."""
    return Path(os.environ.get("TRANSFERLAB_HOME", Path.home() / ".cache" / "transferlab")) / "features"


def print_data_summary(console: Console, data: DataSplits) -> None:
    """Prints images per class and split, and the skipped files."""
    table = Table(title=f"Data: {data.root} ({data.layout})")
    table.add_column("class")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    counts = data.counts()
    for name in data.classes:
        table.add_row(name, str(counts["train"][name]), str(counts["validation"][name]))
    table.add_row("[bold]total", f"[bold]{sum(counts['train'].values())}",
                  f"[bold]{sum(counts['validation'].values())}")
    console.print(table)
    if data.skipped:
        console.print(f"[yellow]Skipped {len(data.skipped)} file(s) (listed in data_report.json):")
        for item in data.skipped[:10]:
            console.print(f"  [yellow]{item['path']}[/]: {item['reason']}")
        if len(data.skipped) > 10:
            console.print(f"  ... and {len(data.skipped) - 10} more")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def _quiet_lightning() -> None:
    """Silences Lightning's advertising and warnings about things we do on purpose."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTips())
    for pattern in (r".*Checkpoint directory .* exists and is not empty.*", r".*isinstance\(treespec, LeafSpec\).*",
                    r".*does not have many workers.*", r".*module\(s\) in eval mode at the start of training.*",
                    r".*The number of training batches .* is smaller than the logging interval.*",
                    r".*overridden `on_after_batch_transfer` in `LightningModule` but have passed in a.*",
                    r".*Your `IterableDataset` has `__len__` defined.*"):  # streams know their per-rank length
        warnings.filterwarnings("ignore", message=pattern)


def _no_augment(cfg: TrainConfig) -> bool:
    return resolve_augment(cfg.augment).is_identity and not (cfg.mixup or cfg.cutmix)


class EvalDistributedSampler(torch.utils.data.DistributedSampler):
    """Validation indices split across DDP ranks without padding, so that every image counts exactly once
    (Lightning's default DistributedSampler repeats images to even the ranks out). The world size is read
    when iterating, after the launcher has started the ranks; one process gets every index in order."""

    def __init__(self, length: int) -> None:  # no super().__init__: it would need the process group now
        self.length, self.epoch = int(length), 0

    def _indices(self) -> range:
        rank, world = distributed_world()
        return range(rank, self.length, world)

    def __iter__(self):  # noqa: ANN204
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class FeatureCopies(torch.utils.data.Dataset):
    """Cached training features with N augmented copies; epoch e reads copy e mod N."""

    def __init__(self, copies: list[torch.Tensor], labels: torch.Tensor) -> None:
        self.copies, self.labels, self.epoch = copies, labels, 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.copies[self.epoch % len(self.copies)][index], self.labels[index]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class _EpochData(Callback):
    """Calls the training set's `set_epoch` as each epoch starts: `FeatureCopies` reads that epoch's copy, a
    stream reshuffles (before the DataLoader's workers copy the dataset)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(trainer.current_epoch)


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
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the logger's version number: noise next to Keras' metric names
        return metrics


class _PhaseData(L.LightningDataModule):
    """The loaders of a phase, built in `setup`: Lightning calls it in every process of a distributed run
    after the process group exists, so feature extraction (`cached_features`) is sharded across the ranks
    instead of repeated by each of them (or done by rank 0 alone before the others start)."""

    def __init__(self, build: Callable[[], tuple[DataLoader, DataLoader]]) -> None:
        super().__init__()
        self._build = build
        self._loaders: tuple[DataLoader, DataLoader] | None = None

    def setup(self, stage: str) -> None:
        if self._loaders is None:
            self._loaders = self._build()

    def train_dataloader(self) -> DataLoader:
        return self._loaders[0]

    def val_dataloader(self) -> DataLoader:
        return self._loaders[1]


class _Run:
    """The state shared by the phases of one `fit`."""

    def __init__(self, config: TrainConfig, data: DataSplits, model: TransferNet, pre: Preprocessing,
                 run_dir: Path, console: Console, quiet: bool) -> None:
        self.config, self.data, self.model, self.pre = config, data, model, pre
        self.run_dir, self.console, self.quiet = run_dir, console, quiet
        self.weights = class_weights(data, config.class_weight)
        self._digest: str | None = None
        self._features: dict[str, torch.Tensor] | None = None

    @property
    def streamed(self) -> bool:
        return isinstance(self.data, StreamSource)

    def uses_cache(self, phase: Phase) -> bool:
        cfg = self.config
        if self.streamed:  # features are cached by position: streams have none
            return False
        augmented_ok = _no_augment(cfg) or (cfg.feature_cache_copies > 0 and not (cfg.mixup or cfg.cutmix))
        return cfg.feature_cache and phase.strategy.kind == "freeze" and augmented_ok

    def boundary(self, phase: Phase) -> int | None:
        """The stage whose input is cached for a partially frozen base (None: no boundary cache)."""
        cfg = self.config
        if self.streamed or not (cfg.feature_cache and _no_augment(cfg) and phase.strategy.kind in ("unfreeze-from",
                                                                                  "unfreeze-last")):
            return None
        return boundary_stage(self.model.features)

    def _weights_digest(self) -> str:
        """Digest of the base's weights, computed once: every cache of a run is made before the base trains."""
        if self._digest is None:
            self._digest = weights_digest(self.model.features)
        return self._digest

    def _extract(self, samples: list, transform: Any, label: str, extra: dict[str, Any],
                 base: nn.Module | None = None) -> torch.Tensor:
        cfg = self.config
        start = time.perf_counter()
        feats, hit = cached_features(
            base or self.model.features, samples, transform, self.pre.to_dict(), feature_cache_dir(),
            batch_size=max(cfg.batch_size, 64), num_workers=cfg.num_workers, quiet=self.quiet,
            description=f"Features ({label})", min_size=self.pre.resize_size, extra=extra,
            store_dtype=torch.bfloat16 if base is not None else torch.float32, weights=self._weights_digest())
        source = "from the cache" if hit else "extracted and cached"
        self.console.print(f"Features of {len(samples)} {label} images: {source} ({time.perf_counter() - start:.1f} s)")
        return feats

    def features(self) -> dict[str, Any]:
        """{'train': [copies of train features], 'validation': features}; one copy without augmentation."""
        if self._features is None:
            cfg, data = self.config, self.data
            if _no_augment(cfg):
                train = [self._extract(data.train, eval_transform(self.pre), "train", {})]
            else:
                train = []
                for k in range(cfg.feature_cache_copies):
                    torch.manual_seed(cfg.seed * 1000 + k)  # each augmented copy is reproducible
                    train.append(self._extract(data.train, train_transform(self.pre, cfg.augment),
                                               f"train, augmented copy {k + 1}/{cfg.feature_cache_copies}",
                                               {"augment": resolve_augment(cfg.augment).to_dict(), "copy": k,
                                                "seed": cfg.seed}))
            val = self._extract(data.validation, eval_transform(self.pre), "validation", {})
            self._features = {"train": train, "validation": val}
        return self._features

    def fit_model(self, phase: Phase, k: int | None) -> nn.Module:
        """The module a phase trains: the head on cached features, the suffix on boundary activations, or all."""
        if k is not None:
            return BoundaryNet(self.model.features, self.model.head, k)
        return self.model.head if self.uses_cache(phase) else self.model

    def loaders(self, phase: Phase, k: int | None) -> tuple[nn.Module, DataLoader, DataLoader]:
        """(module to train, train loader, validation loader); `k` is the boundary stage (see `boundary`)."""
        return (self.fit_model(phase, k), *self._loaders(phase, k))

    def _loaders(self, phase: Phase, k: int | None) -> tuple[DataLoader, DataLoader]:
        cfg, data = self.config, self.data
        if self.streamed:
            return self._stream_loaders()
        train_y = torch.tensor([s.label for s in data.train])
        val_y = torch.tensor([s.label for s in data.validation])
        drop_last = len(data.train) % cfg.batch_size == 1
        if k is not None:
            prefix = Prefix(self.model.features, k)
            extra = {"boundary_stage": k}
            z_train = self._extract(data.train, eval_transform(self.pre), f"train, stage-{k} boundary", extra, prefix)
            z_val = self._extract(data.validation, eval_transform(self.pre), f"validation, stage-{k} boundary",
                                  extra, prefix)
            return (DataLoader(TensorDataset(z_train, train_y), batch_size=cfg.batch_size, shuffle=True,
                               drop_last=drop_last),
                    DataLoader(TensorDataset(z_val, val_y), batch_size=max(64, cfg.batch_size),
                               sampler=EvalDistributedSampler(len(val_y))))
        if self.uses_cache(phase):
            feats = self.features()
            return (DataLoader(FeatureCopies(feats["train"], train_y), batch_size=cfg.batch_size, shuffle=True,
                               drop_last=drop_last),
                    DataLoader(TensorDataset(feats["validation"], val_y), batch_size=max(256, cfg.batch_size),
                               sampler=EvalDistributedSampler(len(val_y))))
        args = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, pin_memory=torch.cuda.is_available(),
                    persistent_workers=cfg.num_workers > 0)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        return (ImageLoader(self._images(data.train, "train"), shuffle=True, drop_last=drop_last,
                            worker_transform=self._batch_transform() if self._cpu_only() else None, **args),
                ImageLoader(self._images(data.validation, "validation"), sampler=EvalDistributedSampler(
                    len(data.validation)), **args))

    def _stream_loaders(self) -> tuple[DataLoader, DataLoader]:
        """Loaders of a streamed source: balanced shuffled training stream, every validation image once."""
        cfg, pre, source = self.config, self.pre, self.data
        train = source.dataset("train", train_uint8_transform(pre, cfg.augment), cfg.seed, cfg.batch_size,
                               pre.resize_size)
        val = source.dataset("validation", eval_transform(pre), cfg.seed, min_size=pre.resize_size)
        args = dict(num_workers=cfg.num_workers, pin_memory=torch.cuda.is_available())
        for ds in (train, val):
            ds.num_workers = cfg.num_workers
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        return (ImageLoader(train, batch_size=cfg.batch_size,
                            worker_transform=self._batch_transform() if self._cpu_only() else None, **args),
                DataLoader(val, batch_size=max(64, cfg.batch_size), **args))

    def _batch_transform(self) -> BatchTransform:
        cfg = self.config
        return BatchTransform(self.pre, cfg.augment, len(self.data.classes), cfg.mixup, cfg.cutmix)

    def _cpu_only(self) -> bool:
        return self.config.accelerator == "cpu" or not (torch.cuda.is_available() or torch.backends.mps.is_available())

    def _images(self, samples: list, split: str) -> ImageListDataset:
        """Images of a split with their transform, through the decoded-image cache where it fits."""
        cfg, pre = self.config, self.pre
        cached = cfg.decoded_cache and DecodedCache.nbytes(len(samples), pre) <= DECODED_CACHE_LIMIT
        if split == "train":
            transform = train_uint8_transform(pre, cfg.augment, resized=cached)
        else:
            transform = eval_transform(pre, resized=cached)
        cache = DecodedCache(samples, pre) if cached else None
        return ImageListDataset(samples, transform, pre.resize_size, cache=cache)

    def run_phase(self, phase: Phase, history: HistoryCallback, ckpt_path: str | None) -> tuple[str, float | None]:
        cfg = self.config
        apply_strategy(self.model, phase.strategy)
        k = self.boundary(phase)
        fit_model = self.fit_model(phase, k)
        data = _PhaseData(lambda: self._loaders(phase, k))
        module = TransferModule(fit_model, len(self.data.classes), cfg, phase.lr, self.weights, self._batch_transform())
        mode = MONITORS[cfg.monitor]
        checkpoint = ModelCheckpoint(dirpath=self.run_dir, filename=phase.best_name, monitor=cfg.monitor, mode=mode,
                                     save_top_k=1, save_last=True, auto_insert_metric_name=False,
                                     enable_version_counter=False)
        checkpoint.CHECKPOINT_NAME_LAST = phase.last_name
        history.start_phase(phase.index)
        callbacks: list[Callback] = [checkpoint, history, LearningRateMonitor(logging_interval="epoch"),
                                     _EpochData()]
        if not self.quiet:
            two_phase = parse_strategy(cfg.strategy).kind == "two-phase"
            callbacks.append(KerasProgressBar(phase.index if two_phase else None))
        if cfg.patience > 0:
            callbacks.append(EarlyStopping(monitor=cfg.monitor, mode=mode, patience=cfg.patience))
        params = count_parameters(self.model)
        self.console.print(f"Phase {phase.index}: strategy {phase.strategy}, lr {phase.lr:g}, "
                           f"{params['trainable']:,} of {params['total']:,} parameters trainable"
                           + (", head on cached features" if self.uses_cache(phase) else "")
                           + (f", suffix from stage {k} on cached boundary activations" if k is not None else ""))
        budget = None
        if cfg.max_minutes:
            share = cfg.max_minutes / (2 if parse_strategy(cfg.strategy).kind == "two-phase" else 1)
            budget = {"seconds": max(1.0, share * 60)}
        trainer = L.Trainer(
            max_epochs=phase.epochs, max_time=budget, accelerator=cfg.accelerator, devices=cfg.devices,
            num_nodes=cfg.num_nodes,
            precision=_precision(cfg),
            callbacks=callbacks, plugins=[AtomicCheckpointIO()],
            logger=CSVLogger(save_dir=str(self.run_dir), name="logs"), enable_progress_bar=not self.quiet,
            enable_model_summary=False, log_every_n_steps=10, num_sanity_val_steps=0,
            default_root_dir=str(self.run_dir),
        )
        # Lightning's torch.compile integration: it unwraps the compiled module for checkpoints and strategies
        trainer.fit(torch.compile(module) if cfg.compile else module, datamodule=data, ckpt_path=ckpt_path)
        best = checkpoint.best_model_path
        if best:  # the phase ends with its best weights in the model
            module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
        score = checkpoint.best_model_score
        self.model.to(memory_format=torch.contiguous_format).cpu()
        return best, (float(score) if score is not None else None)


def fit(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, quiet: bool = False) -> TrainResult:
    """Trains a classifier from `config.data` and writes everything into the run folder.

    The run folder holds config.yaml, best.ckpt, last.ckpt, model.safetensors + labels.json +
    preprocessing.json (the inference bundle), history.csv, history.png, metrics.json, data_report.json,
    split.csv and Lightning's CSV logs. With the feature cache (`freeze`, no augmentation) the checkpoints
    hold the head only: the base is the unchanged pretrained one.

    Args:
        config: The settings; `None` values are resolved from the model and the data.
        overwrite: Replace an existing run folder.
        resume: Continue the run in `config.out` from its last checkpoint (see `resume`).
        quiet: No console output (and no progress bar).

    Example:
        >>> result = fit(TrainConfig(data="cats_and_dogs_filtered", epochs=5, out="runs/cd"))  # doctest: +SKIP
        >>> result.metrics["best_val_accuracy"]
        0.97
    """
    _quiet_lightning()
    tune_malloc()
    console = Console(quiet=quiet, stderr=True, soft_wrap=True)
    started = time.perf_counter()
    if resume and not config.out:
        raise ValueError("Resuming needs the run folder: pass --resume RUN (the folder of the run to continue).")
    config = resolve_config(config)
    if not config.data:
        raise ValueError("No data folder given. Pass DATA: a folder of class folders, or train/ and validation/.")
    run_dir = Path(config.out)
    data = _load_data(config)
    if is_rank_zero():  # other ranks (DDP) only read; rank 0 owns the run folder
        _prepare_run_dir(run_dir, overwrite, resume)
    L.seed_everything(config.seed, workers=True, verbose=False)

    head = HeadConfig(tuple(config.head_hidden), config.head_dropout, config.head_batch_norm)
    model = build_classifier(config.model, len(data.classes), weights=config.weights, image_size=config.image_size,
                             head=head, **dict(config.model_kwargs or {}))
    pre = Preprocessing.from_model(model, config.image_size)
    config = replace(config, image_size=pre.image_size)
    params = count_parameters(model)
    rank_zero = is_rank_zero()
    if not rank_zero:
        console.quiet = True
    print_data_summary(console, data)
    if rank_zero and not resume:
        write_json(run_dir / "data_report.json", data.report())
        if isinstance(data, DataSplits):  # a stream's split is its index (or shards): nothing to list
            _write_split(run_dir / "split.csv", data)
    if rank_zero:
        write_yaml(run_dir / "config.yaml", {**config.to_dict(), "classes": data.classes,
                                             "preprocessing": pre.to_dict(), "parameters": params,
                                             "environment": _environment()})
    console.print(f"Model {config.model} ({params['total']:,} parameters), strategy "
                  f"{config.strategy}, image size {pre.image_size}")
    report = getattr(model.features, "weights_report", None)
    if report:
        skipped = len(report["head_skipped"]) + len(report["head_missing"])
        console.print(f"Weights: {report['loaded']} of {report['total']} tensors loaded from {report['source']}"
                      + (f"; {skipped} classifier tensors left out (a new head is trained)" if skipped else ""))

    run = _Run(config, data, model, pre, run_dir, console, quiet)
    state_path = run_dir / "state.json"
    state = _read_state(state_path) if resume else {"completed": []}
    history = HistoryCallback(run_dir / "history.csv", read_history(run_dir / "history.csv") if resume else None)
    results: dict[int, tuple[str, float | None]] = {}
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    try:
        phases = _phases(config)
        for phase in phases:
            if phase.index > 1:  # the weights each later phase starts from, in case it never beats them
                snapshots[phase.index - 1] = {k: v.clone() for k, v in model.state_dict().items()}
            best_path = run_dir / f"{phase.best_name}.ckpt"
            if phase.index in state["completed"] and phase is not phases[-1]:  # the last phase may be extended
                apply_strategy(model, phase.strategy)
                fit_model = model.head if run.uses_cache(phase) else model
                _load_module_weights(fit_model, best_path)
                results[phase.index] = (str(best_path), state.get("scores", {}).get(str(phase.index)))
                continue
            last = run_dir / f"{phase.last_name}.ckpt"
            ckpt = str(last) if resume and last.is_file() else None
            if resume and ckpt is None and phase.index == 1:
                raise FileNotFoundError(f"Cannot resume: '{last}' does not exist (the run saved no epoch yet). "
                                        "Start it again with --overwrite.")
            results[phase.index] = run.run_phase(phase, history, ckpt)
            state["completed"] = sorted(set(state["completed"]) | {phase.index})
            state.setdefault("scores", {})[str(phase.index)] = results[phase.index][1]
            if rank_zero:
                write_json(state_path, state)
    finally:
        if history.rows and rank_zero:
            best_row = _best_row(history.rows, config.monitor)
            plot_history(history.rows, run_dir / "history.png", best_epoch=best_row and int(best_row["epoch"]),
                         title=f"{config.model} ({config.strategy})")

    metrics = _metrics(history.rows, config, time.perf_counter() - started)
    if not rank_zero:  # DDP: the other ranks trained their shards; rank 0 writes the results
        return TrainResult(run_dir, metrics, config, data)
    best_phase = _finish_checkpoints(run_dir, results, config)
    if best_phase in snapshots:
        model.load_state_dict(snapshots[best_phase])
    save_bundle(run_dir, model, config.model, data.classes, pre, head=head,
                model_kwargs=dict(config.model_kwargs or {}))
    write_json(run_dir / "metrics.json", metrics)
    if isinstance(data, DataSplits):
        _report(run_dir, model, data, pre, config, quiet)
    else:
        console.print("No report.html for streamed data (the validation split is not a file list): run "
                      f"`transferlab evaluate {run_dir} VALIDATION_FOLDER_OR_CSV` on a sample of it.")
    console.print(f"Best val_accuracy {metrics['best_val_accuracy']:.4f} (val_loss {metrics['best_val_loss']:.4f}) "
                  f"at epoch {metrics['best_epoch']}; run folder: {run_dir}"
                  + (" (report.html)" if (run_dir / "report.html").is_file() else ""))
    return TrainResult(run_dir, metrics, config, data)


def _load_data(config: TrainConfig) -> DataSplits | StreamSource:
    """The run's data: a folder walk / CSV list, or a stream (`--stream`, shard folders, Parquet indexes)."""
    if config.stream or is_stream_source(config.data):
        if config.subset:
            raise ValueError("--subset needs a folder or CSV that can be listed; it does not apply to streamed data "
                             "(shards, Parquet, --stream). Make a smaller index instead.")
        return open_stream(config.data, config.val_split)
    data = load_image_folder(config.data, val_split=config.val_split, seed=config.seed)
    return data.subset(int(config.subset), config.seed) if config.subset else data


def _report(run_dir: Path, model: nn.Module, data: DataSplits, pre: Preprocessing, config: TrainConfig,
            quiet: bool) -> None:
    """Evaluates the final model on the validation split (confusion matrix, misclassified images, ...) and
    writes report.html."""
    from .bundle import Bundle
    from .evaluate import evaluate_samples, write_evaluation
    from .predict import Predictor
    from .report import write_report

    predictor = Predictor(Bundle(model, data.classes, pre, {"model": config.model}))
    result = evaluate_samples(predictor, data.validation, f"the validation split of {data.root}",
                              batch_size=max(64, config.batch_size), num_workers=config.num_workers, quiet=quiet)
    write_evaluation(result, run_dir)
    write_report(run_dir)
    model.to(memory_format=torch.contiguous_format)


def _read_state(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"completed": []}


def _load_module_weights(module: nn.Module, ckpt: Path) -> None:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})


def _finish_checkpoints(run_dir: Path, results: dict[int, tuple[str, float | None]], config: TrainConfig) -> int:
    """For two-phase runs, makes best.ckpt the overall best and last.ckpt the final phase's last; returns the
    index of the phase whose best weights are the run's best."""
    if len(results) < 2:
        return 1
    pick = max if MONITORS[config.monitor] == "max" else min
    scored = {k: v for k, v in results.items() if v[1] is not None and v[0]}
    if not scored:
        return max(results)
    best_phase = pick(scored, key=lambda k: scored[k][1])
    for source, target in ((scored[best_phase][0], "best.ckpt"), (run_dir / "last-phase2.ckpt", "last.ckpt")):
        if Path(source).is_file():
            with atomic_path(run_dir / target) as tmp:
                shutil.copyfile(source, tmp)
    return best_phase


def resume(run_dir: str | os.PathLike[str], epochs: int | None = None, quiet: bool = False) -> TrainResult:
    """Continues an interrupted or finished run from its last checkpoint, with the settings in its config.yaml.

    Optimizer, scheduler, epoch and phase are restored (Lightning checkpoints plus `state.json`).

    Args:
        run_dir: The run folder.
        epochs: A new maximum number of epochs (to train longer than first planned).
        quiet: No console output.

    Example:
        >>> resume("runs/cd", epochs=20)  # doctest: +SKIP
    """
    saved = Path(run_dir) / "config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"Cannot resume: '{saved}' does not exist. Pass the folder of a run made by "
                                "`transferlab train`.")
    config = replace(TrainConfig.from_yaml(saved), out=str(run_dir))
    if epochs is not None:
        config = replace(config, epochs=int(epochs))
    return fit(config, resume=True, quiet=quiet)


def _best_row(rows: list[dict[str, Any]], monitor: str) -> dict[str, Any] | None:
    scored = [r for r in rows if r.get(monitor) is not None]
    if not scored:
        return None
    pick = max if MONITORS[monitor] == "max" else min
    return pick(scored, key=lambda r: r[monitor])


def _metrics(rows: list[dict[str, Any]], config: TrainConfig, wall: float) -> dict[str, Any]:
    best = _best_row(rows, config.monitor) or {}
    last = rows[-1] if rows else {}
    planned = config.epochs
    if str(config.strategy) == "two-phase":
        planned += config.finetune_epochs or config.epochs
    return {
        "monitor": config.monitor,
        "best_epoch": int(best["epoch"]) if best else None,
        "best_phase": int(best.get("phase") or 1) if best else None,
        "best_val_accuracy": best.get("val_accuracy"),
        "best_val_loss": best.get("val_loss"),
        "max_val_accuracy": max((r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None), default=None),
        "min_val_loss": min((r["val_loss"] for r in rows if r.get("val_loss") is not None), default=None),
        "final": {k: last.get(k) for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")},
        "epochs_run": len(rows),
        "stopped_early": bool(rows) and len(rows) < planned,
        "wall_seconds": round(wall, 2),
    }


def _write_split(path: Path, data: DataSplits) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=("path", "label", "split"))
    writer.writeheader()
    writer.writerows(data.split_rows())
    write_text(path, buf.getvalue())
