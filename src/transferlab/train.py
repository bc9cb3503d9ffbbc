"""Training: the Lightning module, the run folder, and `fit` from a TrainConfig to a trained bundle."""

from __future__ import annotations

import csv
import io
import logging
import os
import platform
import shutil
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy

from . import __version__
from ._io import atomic_path, write_json, write_text, write_yaml
from .bundle import save_bundle
from .config import MONITORS, TrainConfig
from .data.datasets import ImageListDataset
from .data.folder import DataSplits, load_image_folder
from .data.transforms import Preprocessing, eval_transform, train_transform
from .finetune import apply_strategy, count_parameters, keep_frozen_batchnorm_in_eval
from .models import create_model, get_model_info
from .plots import plot_history

__all__ = ["TransferModule", "TrainResult", "fit", "resume", "resolve_config", "HISTORY_FIELDS"]

HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class TransferModule(L.LightningModule):
    """A timm model with a new head, trained with cross-entropy (or binary cross-entropy for one output).

    Logs Keras' metric names: `loss`, `accuracy`, `val_loss`, `val_accuracy`.

    Args:
        model: A timm model whose classifier was reset for the new classes.
        num_classes: Number of classes.
        lr: Learning rate.
        optimizer: 'adam', 'adamw', 'sgd' or 'rmsprop'.
        weight_decay: Weight decay.
    """

    def __init__(self, model: nn.Module, num_classes: int, lr: float = 1e-3, optimizer: str = "adam",
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.train_accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def train(self, mode: bool = True) -> TransferModule:
        super().train(mode)
        if mode:
            keep_frozen_batchnorm_in_eval(self.model)
        return self

    def _loss_and_preds(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if logits.shape[-1] == 1:  # the course CNN's Dense(1, sigmoid): binary cross-entropy
            logit = logits[:, 0].float()
            return F.binary_cross_entropy_with_logits(logit, y.float()), (logit > 0).long()
        return F.cross_entropy(logits.float(), y), logits.argmax(dim=-1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss, preds = self._loss_and_preds(self(x), y)
        self.train_accuracy(preds, y)
        self.log("loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("accuracy", self.train_accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        loss, preds = self._loss_and_preds(self(x), y)
        self.val_accuracy(preds, y)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("val_accuracy", self.val_accuracy, on_epoch=True, prog_bar=True, batch_size=len(y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        lr, wd = self.hparams.lr, self.hparams.weight_decay
        name = self.hparams.optimizer
        if name == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd)
        if name == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it: a crash never leaves a broken .ckpt."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike[str],
                        storage_options: Any | None = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class HistoryCallback(Callback):
    """Writes `history.csv` (one row per epoch, Keras' `history.history` columns) after every epoch."""

    def __init__(self, path: Path, rows: list[dict[str, Any]] | None = None) -> None:
        self.path = path
        self.rows = list(rows or [])
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": trainer.current_epoch + 1}
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
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS)
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
    return rows


@dataclass
class TrainResult:
    """What `fit` returns: the run folder and the final metrics (also in `metrics.json`)."""

    run_dir: Path
    metrics: dict[str, Any]
    config: TrainConfig
    data: DataSplits


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fills in every `None` setting from the model (weights, strategy, lr, image size, workers, out)."""
    config = replace(config).validate()
    info = get_model_info(config.model)
    weights = config.weights or ("imagenet" if info.has_pretrained else "none")
    strategy = config.strategy or ("freeze" if weights != "none" else "full")
    if strategy == "freeze" and weights == "none":
        raise ValueError(
            "strategy='freeze' trains only the new head on top of a frozen base, which needs pretrained "
            "weights, but weights='none'. Use `--strategy full` to train from scratch, or pretrained weights."
        )
    lr = config.lr if config.lr is not None else (1e-3 if strategy == "freeze" else 1e-4)
    workers = config.num_workers
    if workers is None:
        workers = min(4, max(0, (os.cpu_count() or 1) // 2))
    out = config.out or str(Path("runs") / f"{config.model}-{datetime.now():%Y%m%d-%H%M%S}")
    return replace(config, weights=str(weights), strategy=strategy, lr=float(lr), num_workers=int(workers),
                   out=out)


def _prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        if resume:
            return
        if not overwrite:
            raise FileExistsError(
                f"Output folder '{run_dir}' already exists and is not empty. Pass --overwrite to replace it, "
                "--resume to continue that run, or choose another --out."
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


def print_data_summary(console: Console, data: DataSplits) -> None:
    """Prints images per class and split, and the skipped files."""
    table = Table(title=f"Data: {data.root} ({data.layout})")
    table.add_column("class")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    counts = data.counts()
    for name in data.classes:
        table.add_row(name, str(counts["train"][name]), str(counts["validation"][name]))
    table.add_row("[bold]total", f"[bold]{len(data.train)}", f"[bold]{len(data.validation)}")
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
    """Silences Lightning's advertising and warnings about files we write on purpose."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")


def fit(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, quiet: bool = False) -> TrainResult:
    """Trains a classifier from `config.data` and writes everything into the run folder.

    The run folder holds config.yaml, best.ckpt, last.ckpt, model.safetensors + labels.json +
    preprocessing.json (the inference bundle), history.csv, history.png, metrics.json, data_report.json,
    split.csv and Lightning's CSV log.

    Args:
        config: The settings; `None` values are resolved from the model and the data.
        overwrite: Replace an existing run folder.
        resume: Continue the run in `config.out` from its last checkpoint.
        quiet: No console output (and no progress bar).

    Example:
        >>> result = fit(TrainConfig(data="cats_and_dogs_filtered", epochs=5, out="runs/cd"))  # doctest: +SKIP
        >>> result.metrics["best_val_accuracy"]
        0.97
    """
    _quiet_lightning()
    console = Console(quiet=quiet, stderr=True, soft_wrap=True)
    started = time.perf_counter()
    if resume and not config.out:
        raise ValueError("Resuming needs the run folder: pass --out RUN (the folder of the run to continue).")
    config = resolve_config(config)
    if not config.data:
        raise ValueError("No data folder given. Pass DATA: a folder of class folders, or train/ and validation/.")
    run_dir = Path(config.out)
    data = load_image_folder(config.data, val_split=config.val_split, seed=config.seed)
    _prepare_run_dir(run_dir, overwrite, resume)
    L.seed_everything(config.seed, workers=True, verbose=False)

    model_kwargs: dict[str, Any] = {}
    model = create_model(config.model, num_classes=len(data.classes), weights=config.weights,
                         image_size=config.image_size, **model_kwargs)
    apply_strategy(model, config.strategy)
    pre = Preprocessing.from_model(model, config.image_size)
    config = replace(config, image_size=pre.image_size)
    params = count_parameters(model)

    print_data_summary(console, data)
    write_json(run_dir / "data_report.json", data.report())
    _write_split(run_dir / "split.csv", data)
    write_yaml(run_dir / "config.yaml", {**config.to_dict(), "classes": data.classes,
                                         "preprocessing": pre.to_dict(), "parameters": params,
                                         "environment": _environment()})
    console.print(f"Model {config.model} ({params['total']:,} parameters, {params['trainable']:,} trainable), "
                  f"strategy {config.strategy}, image size {pre.image_size}, lr {config.lr:g}")

    pin = torch.cuda.is_available()
    loader_args = dict(batch_size=config.batch_size, num_workers=config.num_workers, pin_memory=pin,
                       persistent_workers=config.num_workers > 0)
    train_loader = DataLoader(ImageListDataset(data.train, train_transform(pre, config.augment)), shuffle=True,
                              drop_last=len(data.train) % config.batch_size == 1, **loader_args)
    val_loader = DataLoader(ImageListDataset(data.validation, eval_transform(pre)), shuffle=False, **loader_args)

    module = TransferModule(model, len(data.classes), lr=config.lr, optimizer=config.optimizer,
                            weight_decay=config.weight_decay)
    mode = MONITORS[config.monitor]
    checkpoint = ModelCheckpoint(dirpath=run_dir, filename="best", monitor=config.monitor, mode=mode,
                                 save_top_k=1, save_last=True, auto_insert_metric_name=False,
                                 enable_version_counter=False)
    history = HistoryCallback(run_dir / "history.csv", read_history(run_dir / "history.csv") if resume else None)
    callbacks: list[Callback] = [checkpoint, history, LearningRateMonitor(logging_interval="epoch")]
    if config.patience > 0:
        callbacks.append(EarlyStopping(monitor=config.monitor, mode=mode, patience=config.patience))
    trainer = L.Trainer(
        max_epochs=config.epochs, accelerator=config.accelerator, devices=config.devices,
        precision=_precision(config), callbacks=callbacks, plugins=[AtomicCheckpointIO()],
        logger=CSVLogger(save_dir=str(run_dir), name="logs"),
        enable_progress_bar=not quiet, enable_model_summary=False, log_every_n_steps=10,
        num_sanity_val_steps=0, deterministic=False, default_root_dir=str(run_dir),
    )
    ckpt_path = None
    if resume:
        last = run_dir / "last.ckpt"
        if not last.is_file():
            raise FileNotFoundError(f"Cannot resume: '{last}' does not exist (the run saved no epoch yet).")
        ckpt_path = str(last)
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path)
    finally:
        if trainer.is_global_zero and history.rows:
            best_epoch = _best_row(history.rows, config.monitor)
            plot_history(history.rows, run_dir / "history.png", best_epoch=best_epoch and int(best_epoch["epoch"]),
                         title=f"{config.model} ({config.strategy})")

    best_path = checkpoint.best_model_path
    if best_path:
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    module.cpu()
    metrics = _metrics(history.rows, config, time.perf_counter() - started, trainer)
    if trainer.is_global_zero:
        save_bundle(run_dir, module.model, config.model, data.classes, pre, model_kwargs)
        write_json(run_dir / "metrics.json", metrics)
    console.print(f"Best val_accuracy {metrics['best_val_accuracy']:.4f} (val_loss {metrics['best_val_loss']:.4f}) "
                  f"at epoch {metrics['best_epoch']}; run folder: {run_dir}")
    return TrainResult(run_dir, metrics, config, data)


def resume(run_dir: str | os.PathLike[str], epochs: int | None = None, quiet: bool = False) -> TrainResult:
    """Continues an interrupted or finished run from its `last.ckpt`, with the settings in its config.yaml.

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


def _metrics(rows: list[dict[str, Any]], config: TrainConfig, wall: float, trainer: L.Trainer) -> dict[str, Any]:
    best = _best_row(rows, config.monitor) or {}
    last = rows[-1] if rows else {}
    return {
        "monitor": config.monitor,
        "best_epoch": int(best["epoch"]) if best else None,
        "best_val_accuracy": best.get("val_accuracy"),
        "best_val_loss": best.get("val_loss"),
        "max_val_accuracy": max((r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None), default=None),
        "min_val_loss": min((r["val_loss"] for r in rows if r.get("val_loss") is not None), default=None),
        "final": {k: last.get(k) for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")},
        "epochs_run": len(rows),
        "stopped_early": bool(rows) and len(rows) < config.epochs and not trainer.interrupted,
        "wall_seconds": round(wall, 2),
    }


def _write_split(path: Path, data: DataSplits) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=("path", "label", "split"))
    writer.writeheader()
    writer.writerows(data.split_rows())
    write_text(path, buf.getvalue())
