"""The phases of a run (one `trainer.fit` each) and the state they share: caches, loaders, the Trainer.

Over 400 lines: `PhaseRunner` is the one owner of what each phase trains on (features, boundary activations,
decoded images, each under the cache limit, plain or as augmented copies) and of the loaders built from them;
split across files, those choices would have to be kept in step by hand.
"""

from __future__ import annotations

import pickle
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .._console import EpochTable, in_notebook
from ..data.augment import resolve_augment
from ..data.datasets import ImageListDataset, ImageLoader
from ..data.decoded import DecodedCache
from ..data.folder import DataSplits
from ..data.transforms import BatchTransform, Preprocessing, eval_transform, train_transform, train_uint8_transform
from ..errors import DataError
from ..models.transfer import TransferNet
from ..runs.folder import RunFolder
from ..runs.history import MONITORS
from .boundary import BoundaryNet, Prefix, boundary_bytes, boundary_stage
from .callbacks.best_checkpoint import BestCheckpoint
from .callbacks.checkpoint_io import AtomicCheckpointIO
from .callbacks.epoch_data import EpochData
from .callbacks.epoch_line import EPOCH_COLUMNS, EpochLine
from .callbacks.finite_loss import FiniteLoss
from .callbacks.history import HistoryCallback
from .callbacks.progress import KerasProgressBar
from .config import TrainConfig
from .features import cached_features, weights_digest
from .loaders import (
    EvalDistributedSampler,
    FeatureCopies,
    PhaseData,
    feature_cache_dir,
)
from .module import TransferModule, class_weights
from .strategies import Phase, apply_strategy, count_parameters, plan_phases

__all__ = ["Phase", "plan_phases", "PhaseRunner", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl+C (or SIGTERM) stopped a phase; `fit` saves what it has and re-raises it.

    Attributes:
        phase: The phase that was running.
        best_checkpoint: Its best checkpoint so far, or None before the first validation.
        diverged: Why the phase stopped when the loss stopped being finite (None: Ctrl+C or SIGTERM).
    """

    def __init__(self, phase: int, best_checkpoint: str | None, diverged: str | None = None) -> None:
        super().__init__(f"training interrupted in phase {phase}")
        self.phase, self.best_checkpoint, self.diverged = phase, best_checkpoint, diverged



def _precision(config: TrainConfig) -> str:
    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available() and config.accelerator in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


class PhaseRunner:
    """The state shared by the phases of one `fit`."""

    def __init__(self, config: TrainConfig, data: DataSplits, model: TransferNet, pre: Preprocessing,
                 run_dir: Path, console: Console, quiet: bool, callbacks: list[Callback] | None = None,
                 loggers: list[Logger] | None = None) -> None:
        self.config, self.data, self.model, self.pre = config, data, model, pre
        self.run_dir, self.console, self.quiet = run_dir, console, quiet
        self.user_callbacks, self.user_loggers = list(callbacks or []), list(loggers or [])
        self.weights = class_weights(data, config.class_weight)
        self._digest: str | None = None
        self._features: dict[str, torch.Tensor] | None = None
        self._over_limit: set[str] = set()

    @property
    def streamed(self) -> bool:
        return self.data.streamed

    def fits(self, kind: str, count: int, nbytes: int, instead: str) -> bool:
        """Whether a cache of `nbytes` for `count` images stays within `cache_limit_gb`; if not, says so once (what
        is done instead, and the setting that allows it) and returns False."""
        limit = self.config.cache_limit_gb * 1e9
        if nbytes <= limit:
            return True
        if kind not in self._over_limit:
            self._over_limit.add(kind)
            self.console.print(f"The {kind} cache of {count:,} images would take {nbytes / 1e9:.1f} GB, over "
                               f"cache_limit_gb = {self.config.cache_limit_gb:g}; {instead}. Raise --cache-limit-gb "
                               "to cache it.", highlight=False)
        return False

    def uses_cache(self, phase: Phase) -> bool:
        cfg = self.config
        if self.streamed:  # features are cached by position: streams have none
            return False
        if not (cfg.feature_cache and phase.strategy.spec.cache == "features" and self._cacheable()):
            return False
        head = next((m for m in self.model.head.modules() if isinstance(m, nn.Linear)), None)
        width = head.in_features if head is not None else int(self.model.num_features)
        count = len(self.data.train) * self._copies() + len(self.data.validation)
        return self.fits("feature", count, count * width * 4, "the frozen base runs on every batch instead")

    def boundary(self, phase: Phase) -> int | None:
        """The stage whose input is cached for a partially frozen base (None: no boundary cache)."""
        cfg = self.config
        if self.streamed or not (cfg.feature_cache and self._cacheable() and phase.strategy.spec.cache == "boundary"):
            return None
        k = boundary_stage(self.model.features)
        if k is None:
            return None
        count = len(self.data.train) * self._copies() + len(self.data.validation)
        per_image = boundary_bytes(self.model.features, k, self.pre.image_size)
        return k if self.fits("boundary-activation", count, count * per_image,
                              "the frozen stages run on every batch instead") else None

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

    def _cacheable(self) -> bool:
        """Whether the training images' outputs can be cached: no augmentation, or `feature_cache_copies`
        augmented copies of them; not when MixUp/CutMix mix images (a cache holds single images)."""
        return self.config.mixes != "images" and (self._plain_images() or self.config.feature_cache_copies > 0)

    def _plain_images(self) -> bool:
        return resolve_augment(self.config.augment).is_identity

    def _copies(self) -> int:
        return 1 if self._plain_images() else self.config.feature_cache_copies

    def mixes_cache(self, phase: Phase, k: int | None) -> bool:
        """Whether MixUp/CutMix mix the cached tensors this phase trains on (`mix_on='cached'`; `resolve_config`
        refuses CutMix of cached features before the run starts)."""
        return self.config.mixes == "cached" and (k is not None or self.uses_cache(phase))

    def _train_copies(self, label: str, extra: dict[str, Any], base: nn.Module | None = None) -> list[torch.Tensor]:
        """The cached outputs (features, or boundary activations with `base` = the prefix) of the training images:
        one copy without augmentation, else `feature_cache_copies` augmented ones (epoch e trains on copy e mod N)."""
        cfg, data = self.config, self.data
        if self._plain_images():
            return [self._extract(data.train, eval_transform(self.pre), label, extra, base)]
        train = []
        for k in range(cfg.feature_cache_copies):
            torch.manual_seed(cfg.seed * 1000 + k)  # each augmented copy is reproducible
            train.append(self._extract(data.train, train_transform(self.pre, cfg.augment),
                                       f"{label}, augmented copy {k + 1}/{cfg.feature_cache_copies}",
                                       {**extra, "augment": resolve_augment(cfg.augment).to_dict(), "copy": k,
                                        "seed": cfg.seed}, base))
        return train

    def features(self) -> dict[str, Any]:
        """{'train': [copies of train features], 'validation': features}; one copy without augmentation."""
        if self._features is None:
            train = self._train_copies("train", {})
            val = self._extract(self.data.validation, eval_transform(self.pre), "validation", {})
            self._features = {"train": train, "validation": val}
        return self._features

    def cached_validation_features(self, phases: list[Phase]) -> torch.Tensor | None:
        """The validation features computed for training, when every phase trained the head on them (so the final
        base is the one they came from); None otherwise."""
        if self._features is None or not phases or not all(self.uses_cache(p) for p in phases):
            return None
        return self._features["validation"]

    def fit_model(self, phase: Phase, k: int | None) -> nn.Module:
        """The module a phase trains: the head on cached features, the suffix on boundary activations, or all."""
        if k is not None:
            return BoundaryNet(self.model.features, self.model.head, k)
        return self.model.head if self.uses_cache(phase) else self.model

    def loaders(self, phase: Phase, k: int | None) -> tuple[nn.Module, DataLoader, DataLoader]:
        """(module to train, train loader, validation loader); `k` is the boundary stage (see `boundary`)."""
        return (self.fit_model(phase, k), *self._loaders(phase, k))

    def _loaders(self, phase: Phase, k: int | None) -> tuple[DataLoader, DataLoader]:
        loaders = self._make_loaders(phase, k)
        # the data order must not depend on whether the caches were read or computed just now (an extraction draws
        # seeds for its loader's workers): the same settings train the same way with a cold or a warm cache
        torch.manual_seed(self.config.seed * 1009 + phase.index)
        return loaders

    def _make_loaders(self, phase: Phase, k: int | None) -> tuple[DataLoader, DataLoader]:
        cfg, data = self.config, self.data
        if self.streamed:
            return self._stream_loaders()
        train_y = torch.tensor([s.label for s in data.train])
        val_y = torch.tensor([s.label for s in data.validation])
        drop_last = len(data.train) % cfg.batch_size == 1
        if k is not None:
            prefix = Prefix(self.model.features, k)
            extra = {"boundary_stage": k}
            z_train = self._train_copies(f"train, stage-{k} boundary", extra, prefix)
            z_val = self._extract(data.validation, eval_transform(self.pre), f"validation, stage-{k} boundary",
                                  extra, prefix)
            return (DataLoader(FeatureCopies(z_train, train_y), batch_size=cfg.batch_size, shuffle=True,
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
        count = len(self.data.train) + len(self.data.validation)  # the limit bounds both splits' caches together
        cached = cfg.decoded_cache and self.fits("decoded-image", count, DecodedCache.nbytes(count, pre),
                                                 "the images are decoded every epoch instead")
        if split == "train":
            transform = train_uint8_transform(pre, cfg.augment, resized=cached)
        else:
            transform = eval_transform(pre, resized=cached)
        cache = DecodedCache(samples, pre) if cached else None
        return ImageListDataset(samples, transform, pre.resize_size, cache=cache)

    def _line(self, text: str) -> None:
        """One plain line on the run's console, flushed now (pipes, log files, notebooks see it at once)."""
        self.console.print(text, markup=False, highlight=False)
        self.console.file.flush()

    def run_phase(self, phase: Phase, history: HistoryCallback, ckpt_path: str | None) -> str | None:
        """Trains one phase; returns its best checkpoint (None before any validation), whose weights the model
        then holds."""
        cfg = self.config
        apply_strategy(self.model, phase.strategy)
        k = self.boundary(phase)
        fit_model = self.fit_model(phase, k)
        data = PhaseData(lambda: self._loaders(phase, k))
        module = TransferModule(fit_model, len(self.data.classes), cfg, phase.lr, self.weights, self._batch_transform(),
                                mix_cached=self.mixes_cache(phase, k))
        phases = plan_phases(cfg)
        several = len(phases) > 1
        folder = RunFolder(self.run_dir)
        checkpoint = BestCheckpoint(dirpath=self.run_dir, monitor=cfg.monitor,
                                    filename=folder.checkpoint("best", phase.index, len(phases)).stem)
        # the last state, every epoch: Lightning's save_last only refreshes it when `monitor` improves, and a
        # resume would then repeat (and rewrite) the epochs after the best one
        last = ModelCheckpoint(dirpath=self.run_dir, filename=folder.checkpoint("last", phase.index, len(phases)).stem,
                               monitor=None, save_top_k=1, every_n_epochs=1, auto_insert_metric_name=False,
                               enable_version_counter=False)
        history.start_phase(phase.index)
        finite = FiniteLoss()
        callbacks: list[Callback] = [checkpoint, last, history, finite, LearningRateMonitor(logging_interval="epoch"),
                                     EpochData()]
        bar = not self.quiet and self.console.is_terminal and not self.console.is_jupyter  # pipes get lines only
        if bar:
            callbacks.append(KerasProgressBar(phase.index if several else None))
        if not self.quiet:
            # in a notebook, one table per phase, drawn below that phase's header line
            table = EpochTable(EPOCH_COLUMNS) if in_notebook() else None
            callbacks.append(EpochLine(history, cfg.monitor, self._line, phase.index if several else None, table))
        # early stopping waits for the monitored metric itself to improve (Keras' EarlyStopping); which epoch is
        # kept is decided apart, by `runs.history.is_better` (BestCheckpoint)
        stopper = EarlyStopping(monitor=cfg.monitor, mode=MONITORS[cfg.monitor], patience=cfg.patience) \
            if cfg.patience > 0 else None
        if stopper is not None:
            callbacks.append(stopper)
        callbacks += self.user_callbacks
        params = count_parameters(self.model)
        self._line(f"Phase {phase.index}: strategy {phase.strategy}, lr {phase.lr:g}, "
                   f"{params['trainable']:,} of {params['total']:,} parameters trainable"
                   + (", head on cached features" if self.uses_cache(phase) else "")
                   + (f", suffix from stage {k} on cached boundary activations" if k is not None else "")
                   + (", mixing the cached tensors" if module.mix_cached else ""))
        if phase.index > 1:
            self._line(f"Phase {phase.index} fine-tunes the unfrozen layers at lr {phase.lr:g} (lr / "
                       f"{cfg.finetune_lr_factor:g}), starting from phase {phase.index - 1}'s best weights. "
                       "The loss often rises for an epoch when layers unfreeze; the best checkpoint of "
                       "either phase is kept.")
        budget = None
        if cfg.max_minutes:
            budget = {"seconds": max(1.0, cfg.max_minutes / len(phases) * 60)}  # each phase gets its share
        trainer = L.Trainer(
            max_epochs=phase.epochs, max_time=budget, accelerator=cfg.accelerator, devices=cfg.devices,
            num_nodes=cfg.num_nodes,
            precision=_precision(cfg),
            callbacks=callbacks, plugins=[AtomicCheckpointIO()],
            logger=[CSVLogger(save_dir=str(self.run_dir), name="logs"), *self.user_loggers],
            enable_progress_bar=bar,
            enable_model_summary=False, log_every_n_steps=10, num_sanity_val_steps=0,
            default_root_dir=str(self.run_dir),
        )
        # Lightning's torch.compile integration: it unwraps the compiled module for checkpoints and strategies
        try:
            trainer.fit(torch.compile(module) if cfg.compile else module, datamodule=data, ckpt_path=ckpt_path,
                        weights_only=True)
        except (RuntimeError, EOFError) as e:
            if ckpt_path is not None and "state_dict" in str(e):
                raise DataError(f"Cannot resume from '{ckpt_path}': its weights do not fit the model config.yaml now "
                                f"describes ({str(e).splitlines()[0][:120]}). Was config.yaml edited? Restore it (the "
                                "model, head and image size the run started with), or start a new run.") from None
            if ckpt_path is None or not (isinstance(e, EOFError) or "PytorchStreamReader" in str(e)):
                raise
            raise DataError(f"Cannot resume from '{ckpt_path}': the file is damaged (truncated, or not a checkpoint). "
                            "The run's other files are intact: start it again with --overwrite, or copy the "
                            "checkpoint again if it came from elsewhere.") from None
        except pickle.UnpicklingError as e:  # weights_only=True refused something in the checkpoint
            raise DataError(f"Refusing to load '{ckpt_path}': it holds objects that are not weights ({str(e)[:160]}). "
                            "Only tensors and plain data are ever loaded, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD "
                            "says. If you did not replace the file, start the run again with --overwrite.") from None
        except SystemExit:  # Lightning turns Ctrl+C into sys.exit(1), leaving SIGINT ignored for the process
            if not trainer.interrupted:
                raise
            signal.signal(signal.SIGINT, signal.default_int_handler)
            best = checkpoint.best_model_path
            if best:  # the phase's best weights so far go into the model, as at a normal end
                module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
            self.model.to(memory_format=torch.contiguous_format).cpu()
            raise TrainingInterrupted(phase.index, best or None) from None
        best = checkpoint.best_model_path
        if best:  # the phase ends with its best weights in the model
            module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
        if finite.diverged is not None:
            self.model.to(memory_format=torch.contiguous_format).cpu()
            epoch, step, value = finite.diverged
            raise TrainingInterrupted(phase.index, best or None,
                                      diverged=(f"the training loss became {value} at epoch {epoch} (step {step}): the "
                                                f"learning rate {phase.lr:g} is too high for this model and data. "
                                                "Lower it (the defaults: 1e-3 for a new head, 1e-4 to fine-tune)."))
        if stopper is not None and stopper.stopped_epoch > 0:
            best_epoch = _best_epoch(history, phase.index, cfg.monitor)
            self._line(f"Early stopping: no {cfg.monitor} improvement for {cfg.patience} epochs; best epoch "
                       f"{best_epoch} restored.")
        self.model.to(memory_format=torch.contiguous_format).cpu()
        return best or None


def _best_epoch(history: HistoryCallback, phase: int, monitor: str) -> int | None:
    """The run-wide epoch number of a phase's best epoch (the one restored), from the history rows."""
    from ..runs.history import best_row

    best = best_row([r for r in history.rows if int(r.get("phase") or 1) == phase], monitor)
    return int(best["epoch"]) if best else None
