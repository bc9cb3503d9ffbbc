"""Training: `fit` from a TrainConfig to a run folder with a bundle, and `resume`."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from rich.console import Console
from torch import nn

from .._console import log_console
from .._io import is_rank_zero
from .._runtime import default_workers, tune_malloc
from ..data.folder import DataSplits
from ..data.sources import open_source, source_kind
from ..data.stream import StreamSource
from ..data.transforms import Preprocessing, preprocessing_from_model
from ..errors import DataError, MissingFileError, SettingError, WeightsUnavailableError
from ..evaluation.displays import plot_history
from ..models import get_model_info
from ..models.transfer import HeadConfig, build_classifier
from ..runs.folder import SKIPPED_LOG, RunFolder
from ..runs.history import best_row, chance_accuracy, chance_warning, run_metrics
from .callbacks.history import HistoryCallback
from .config import TrainConfig, read_run_config
from .loggers import EpochLogger, make_loggers
from .outcome import keep_interrupted_run, load_module_weights, report_validation, save_best
from .phases import PhaseRunner, TrainingInterrupted
from .quiet import quiet_lightning
from .result import TrainResult
from .strategies import DEFAULT_EPOCHS, Phase, apply_strategy, count_parameters, parse_strategy, plan_phases
from .summary import environment, print_data_summary

__all__ = ["TrainResult", "fit", "resume", "resolve_config"]



def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fills in every `None` setting from the model (weights, strategy, lr, workers, out)."""
    config = replace(config).validate()
    if config.strategy == "auto" or config.lr == "auto":
        from .advise import advise

        if config.stream or (config.data and source_kind(config.data) == "shards") or str(config.data).lower(
                ).endswith((".parquet", ".pq")):
            raise SettingError("--strategy auto and --lr auto probe a listed sample of the data; they do not apply to "
                             "streamed data. Run `transferlab advise` on a folder sample, then pass what it says.")

        advice = advise(config.data, config.model, config.weights, seed=config.seed)
        chosen = config.strategy == "auto"  # the advice's strategy comes with its epochs and augmentation
        config = replace(config, strategy=advice.strategy if chosen else config.strategy,
                         lr=advice.lr if config.lr == "auto" else config.lr, advice=advice.to_dict(),
                         epochs=config.epochs or (advice.epochs if chosen else None),
                         augment=advice.augment if chosen and config.augment == "none" else config.augment)
    accelerator = str(config.accelerator).lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise SettingError(f"--accelerator {config.accelerator} asks for a GPU, but PyTorch sees none here (torch "
                           f"{torch.__version__}). Use --accelerator auto (a GPU when there is one) or cpu.")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise SettingError("--accelerator mps needs Apple silicon with PyTorch's MPS backend; use auto or cpu.")
    info = get_model_info(config.model)
    weights = config.weights or ("imagenet" if info.has_pretrained else "none")
    strategy = parse_strategy(config.strategy or ("freeze" if weights != "none" else "full"))
    if strategy.spec.needs_pretrained and weights == "none":
        raise SettingError(
            f"strategy='{strategy}' keeps part of the base frozen, which needs pretrained weights, but "
            "weights='none'. Use `--strategy full` to train from scratch, or pretrained weights."
        )
    mixes_features = config.mix_on == "cached" and config.feature_cache and strategy.spec.cache == "features"
    if config.cutmix and mixes_features:
        raise SettingError(f"cutmix={config.cutmix:g} with mix_on='cached' cannot mix the cached features of "
                           f"strategy {strategy} (vectors: there is no rectangle to cut). Use mixup instead, or "
                           "mix_on='images' (CutMix on the images; the base then runs on every batch).")
    lr = config.lr if config.lr is not None else strategy.spec.default_lr
    workers = default_workers() if config.num_workers is None else config.num_workers
    out = config.out or str(Path("runs") / f"{config.model}-{datetime.now():%Y%m%d-%H%M%S}")
    epochs = config.epochs or DEFAULT_EPOCHS
    return replace(config, weights=str(weights), strategy=str(strategy), lr=float(lr), num_workers=int(workers),
                   out=out, epochs=epochs, finetune_epochs=config.finetune_epochs or epochs)


def fit(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, quiet: bool = False,
        callbacks: Sequence[Callback] | None = None, logger: Logger | Sequence[Logger] | None = None) -> TrainResult:
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
        callbacks: More Lightning callbacks, added to every phase's Trainer after transferlab's own.
        logger: More Lightning loggers (TensorBoard, MLflow, ...), beside the run folder's CSV logs.

    Example:
        >>> result = fit(TrainConfig(data="cats_and_dogs_filtered", epochs=5, out="runs/cd"))  # doctest: +SKIP
        >>> result.metrics["best_val_accuracy"]  # doctest: +SKIP
        0.97
    """
    callbacks = _checked_objects("callbacks", callbacks, Callback, "lightning.pytorch.callbacks.Callback")
    loggers = _checked_objects("logger", logger, Logger, "lightning.pytorch.loggers.Logger")
    with quiet_lightning(), _sigterm_as_interrupt():
        return _fit(config, overwrite, resume, quiet, callbacks, loggers)


def _checked_objects(name: str, given: Any, kind: type, spelled: str) -> list[Any]:
    """One object or a list of them, each an instance of `kind` (a string, a class or anything else is refused)."""
    items = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
    wrong = [item for item in items if not isinstance(item, kind)]
    if wrong:
        raise SettingError(f"The {name!r} argument of fit takes {spelled} objects (one or a list); got "
                           f"{type(wrong[0]).__name__} {str(wrong[0])[:40]!r}. Example: {name}=[MyCallback()].")
    return items


def _fit(config: TrainConfig, overwrite: bool, resume: bool, quiet: bool, callbacks: list[Callback],
         loggers: list[Logger]) -> TrainResult:
    tune_malloc()
    # a terminal wraps messages between words; a pipe or log file keeps each message on one line
    console = log_console(quiet)
    started = time.perf_counter()
    if resume and not config.out:
        raise SettingError("Resuming needs the run folder: pass --resume RUN (the folder of the run to continue).")
    config = resolve_config(config)
    if not config.data:
        raise SettingError("No data folder given. Pass DATA: a folder of class folders, or train/ and validation/.")
    run_dir = Path(config.out)
    folder = RunFolder(run_dir)
    data = _load_data(config)
    L.seed_everything(config.seed, workers=True, verbose=False)

    head = HeadConfig(tuple(config.head_hidden), config.head_dropout, config.head_batch_norm)
    try:
        model = build_classifier(config.model, len(data.classes), weights=config.weights,
                                 image_size=config.image_size, head=head, **dict(config.model_kwargs or {}))
    except WeightsUnavailableError as e:  # what else works depends on the strategy: say it for this one
        scratch = (" Or train from scratch: --weights none (this strategy, " + config.strategy + ", trains the whole"
                   " model)." if not parse_strategy(config.strategy).spec.needs_pretrained else
                   f" (--weights none would train from scratch, which needs --strategy full: {config.strategy} keeps "
                   "part of the base frozen.)")
        raise WeightsUnavailableError(str(e) + scratch) from None
    pre = preprocessing_from_model(model, config.image_size)
    config = replace(config, image_size=pre.image_size)
    phases = plan_phases(config)
    # what each phase trains (checked now, before the folder is touched: a layer that does not exist is refused
    # here); the model then starts as the first phase trains it
    params = _phase_parameters(model, phases)
    if resume:
        _check_same_classes(folder, data.classes)
    rank_zero = is_rank_zero()
    if rank_zero:  # only now, with settings, data and model known good; other ranks (DDP) only read
        folder.prepare(overwrite, resume, protect=[config.data])
    try:
        return _train(config, data, model, pre, head, phases, params, folder, console, quiet, resume, callbacks,
                      loggers, started)
    finally:
        folder.unlock()


def _phase_parameters(model: nn.Module, phases: list[Phase]) -> dict[str, Any]:
    """config.yaml's parameter counts: the total, and what each phase trains (Keras' summary counts), leaving the
    model as the first phase trains it."""
    counts = [count_parameters(apply_strategy(model, phase.strategy)) for phase in reversed(phases)][::-1]
    return {"total": counts[0]["total"], "trainable": max(c["trainable"] for c in counts),
            "non_trainable": counts[0]["total"] - max(c["trainable"] for c in counts),
            "phases": [{"phase": p.index, "strategy": str(p.strategy), "trainable": c["trainable"]}
                       for p, c in zip(phases, counts)]}


def _check_same_classes(folder: RunFolder, classes: list[str]) -> None:
    """Resume only on the classes the run was trained on (a renamed class folder would swap labels silently)."""
    saved = folder.config().get("classes")
    if isinstance(saved, list) and saved != list(classes):
        gone, new = sorted(set(saved) - set(classes)), sorted(set(classes) - set(saved))
        change = (f"missing now: {gone}" if gone else "") + ("; " if gone and new else "") + (
            f"new: {new}" if new else "") or f"the order differs: {saved} then, {list(classes)} now"
        raise DataError(f"Cannot resume '{folder.path}': the data's classes changed since the run started ({change}). "
                        "A resumed model keeps its outputs, so its labels would no longer match. Nothing was written. "
                        "Restore the class folders, or train a new run (another --out, or --overwrite).")


def _train(config: TrainConfig, data: Any, model: nn.Module, pre: Preprocessing, head: HeadConfig,
           phases: list[Phase], params: dict[str, Any], folder: RunFolder, console: Console, quiet: bool,
           resume: bool, callbacks: list[Callback], loggers: list[Logger], started: float) -> TrainResult:
    run_dir = folder.path
    rank_zero = is_rank_zero()
    if not rank_zero:
        console.quiet = True
    print_data_summary(console, data)
    data.log_skipped_to(str(folder.file(SKIPPED_LOG)))
    if rank_zero and not resume:
        report = data.report()
        found = data.find_duplicates()  # what `data info` would say about leaks is said here too
        report.update(duplicates=found["groups"], warnings=found["warnings"])
        for warning in found["warnings"]:
            console.print(f"[bold yellow]Warning:[/] {warning}", highlight=False)
        folder.write_data_report(report)
        rows = data.split_rows()  # None for a stream: its split is its index (or shards)
        if rows is not None:
            folder.write_split(rows)
    if rank_zero:
        folder.write_config({**config.to_dict(), "classes": data.classes, "preprocessing": pre.to_dict(),
                             "parameters": params, "environment": environment()})
    console.print(f"Model {config.model} ({params['total']:,} parameters), strategy "
                  f"{config.strategy}, image size {pre.image_size}")
    report = getattr(model.features, "weights_report", None)
    if report:
        skipped = len(report["head_skipped"]) + len(report["head_missing"])
        console.print(f"Weights: {report['loaded']} of {report['total']} tensors loaded from {report['source']}"
                      + (f"; {skipped} classifier tensors left out (a new head is trained)" if skipped else ""))

    run = PhaseRunner(config, data, model, pre, run_dir, console, quiet, callbacks, loggers)
    state = folder.state() if resume else {"completed": []}
    history = HistoryCallback(folder, folder.history() if resume else None)
    tracking = EpochLogger(history, make_loggers(config.logger, run_dir), config.to_dict()) if config.logger else None
    if tracking is not None:
        run.user_callbacks.insert(0, tracking)
    results: dict[int, str | None] = {}  # each phase's best checkpoint
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    interrupted: TrainingInterrupted | None = None
    try:
        for phase in phases:
            if phase.index > 1:  # the weights each later phase starts from, in case it never beats them
                snapshots[phase.index - 1] = {k: v.clone() for k, v in model.state_dict().items()}
            best_path = folder.checkpoint("best", phase.index, len(phases))
            if phase.index in state["completed"] and phase is not phases[-1]:  # the last phase may be extended
                apply_strategy(model, phase.strategy)
                fit_model = model.head if run.uses_cache(phase) else model
                load_module_weights(fit_model, best_path)
                results[phase.index] = str(best_path)
                continue
            last = folder.checkpoint("last", phase.index, len(phases))
            ckpt = str(last) if resume and last.is_file() else None
            if resume and ckpt is None and phase.index == 1:
                raise MissingFileError(f"Cannot resume: '{last}' does not exist (the run saved no epoch yet). "
                                        "Start it again with --overwrite.")
            results[phase.index] = run.run_phase(phase, history, ckpt)
            state["completed"] = sorted(set(state["completed"]) | {phase.index})
            if rank_zero:
                folder.write_state(state)
    except TrainingInterrupted as stop:  # Ctrl+C or SIGTERM: keep what the run has, then stop
        interrupted = stop
        if stop.best_checkpoint:
            results[stop.phase] = stop.best_checkpoint
    finally:
        if tracking is not None:
            tracking.finish()
        if history.rows and rank_zero:
            best = best_row(history.rows, config.monitor)
            plot_history(history.rows, run_dir / "history.png", best_epoch=best and int(best["epoch"]),
                         title=f"{config.model} ({config.strategy})")

    planned = sum(phase.epochs for phase in phases)
    metrics = run_metrics(history.rows, config.monitor, planned, time.perf_counter() - started,
                          chance=chance_accuracy(data.counts()["validation"]))
    if interrupted is not None:
        keep_interrupted_run(interrupted, results, snapshots, model, folder, metrics, config, data, pre, head,
                              console, rank_zero, len(phases))
    if not rank_zero:  # DDP: the other ranks trained their shards; rank 0 writes the results
        return TrainResult(run_dir, metrics, config, data)
    save_best(results, snapshots, model, folder, metrics, config, data, pre, head, len(phases))
    evaluation = None
    if rank_zero:  # a stream's readers met its unreadable images only now
        folder.write_data_report({**folder.data_report(), "skipped": data.skipped})
    if data.validation_samples() is not None:
        evaluation = report_validation(run_dir, model, data, pre, config, quiet,
                                       run.cached_validation_features(phases))
    else:
        console.print("No report.html for streamed data (the validation split is not a file list): run "
                      f"`transferlab evaluate {run_dir} VALIDATION_FOLDER_OR_CSV` on a sample of it.")
    if metrics.get("at_chance"):
        console.print(f"[bold yellow]Warning:[/] {chance_warning(metrics, len(data.classes))}", highlight=False)
    kept = (f"phase {metrics['best_phase']}, " if len(phases) > 1 else "") + f"epoch {metrics['best_epoch']}"
    console.print(f"Kept the model of {kept}: val_accuracy {metrics['best_val_accuracy']:.4f}, val_loss "
                  f"{metrics['best_val_loss']:.4f}; run folder: {run_dir}"
                  + (" (report.html)" if (run_dir / "report.html").is_file() else ""), highlight=False)
    return TrainResult(run_dir, metrics, config, data, evaluation)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (schedulers, `timeout`, `docker stop`) stops training like Ctrl+C: the best bundle
    is kept and the resume command printed (Lightning alone exits 0 without either). Main thread only; the
    previous handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _load_data(config: TrainConfig) -> DataSplits | StreamSource:
    """The run's data, listed or streamed (`data.sources.open_source`: every form DATA takes)."""
    return open_source(config.data, val_split=config.val_split, seed=config.seed, stream=config.stream,
                       subset=config.subset)


def resume(run_dir: str | os.PathLike[str], epochs: int | None = None, quiet: bool = False,
           callbacks: Sequence[Callback] | None = None, logger: Logger | Sequence[Logger] | None = None) -> TrainResult:
    """Continues an interrupted or finished run from its last checkpoint, with the settings in its config.yaml.

    Optimizer, scheduler, epoch and phase are restored (Lightning checkpoints plus `state.json`).

    Args:
        run_dir: The run folder.
        epochs: A new maximum number of epochs (to train longer than first planned).
        quiet: No console output.

    Example:
        >>> resume("runs/cd", epochs=20)  # doctest: +SKIP
    """
    folder = RunFolder(run_dir)
    config = replace(read_run_config(run_dir, "resume"), out=str(run_dir))
    phases = plan_phases(config)  # config.yaml holds the resolved settings
    completed = folder.state().get("completed", [])
    phase = next((p for p in phases if p.index not in completed), phases[-1])
    done = sum(1 for r in folder.history() if int(r.get("phase") or 1) == phase.index)
    several = len(phases) > 1
    if epochs is not None and int(epochs) <= done:
        raise SettingError(f"The run in '{run_dir}' has already trained {done} epochs"
                           + (f" in phase {phase.index}" if several else "") + f"; --epochs {epochs} adds none. "
                           f"Pass a larger maximum, e.g. --epochs {done + 5}.")
    if epochs is None and folder.is_finished():
        metrics = folder.metrics()
        log_console(quiet).print(
            f"The run in {run_dir} has already finished ({done} epochs" + (f" in phase {phase.index}" if several
                                                                           else "")
            + "): there is nothing to resume, and nothing was changed. To train it longer, give a new maximum: "
            f"transferlab train --resume {run_dir} --epochs {done + 5}", markup=False, highlight=False)
        return TrainResult(folder.path, metrics, config, None)
    if epochs is not None:  # the new maximum is for the phase that continues
        setting = phase.strategy.spec.epoch_settings[0] if not several else \
            parse_strategy(config.strategy).spec.epoch_settings[phase.index - 1]
        config = replace(config, **{setting: int(epochs)})
    return fit(config, resume=True, quiet=quiet, callbacks=callbacks, logger=logger)
