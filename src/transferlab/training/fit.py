"""Training: `fit` from a TrainConfig to a run folder with a bundle, and `resume`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
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

from .._io import atomic_path, is_rank_zero
from .._runtime import default_workers, tune_malloc
from ..data.folder import DataSplits, load_image_folder
from ..data.stream import StreamSource, is_stream_source, open_stream
from ..data.transforms import Preprocessing
from ..errors import MissingFileError, SettingError, TrainingDiverged
from ..evaluation.displays import plot_history
from ..models import get_model_info
from ..models.transfer import HeadConfig, build_classifier
from ..runs.bundle import save_bundle
from ..runs.folder import RunFolder
from ..runs.history import best_row, run_metrics
from .callbacks.history import HistoryCallback
from .config import MONITORS, TrainConfig
from .loggers import EpochLogger, make_loggers
from .phases import PhaseRunner, TrainingInterrupted, plan_phases
from .quiet import quiet_lightning
from .result import TrainResult
from .strategies import (
    apply_strategy,
    count_parameters,
    parse_strategy,
)
from .summary import environment, print_data_summary

__all__ = ["TrainResult", "fit", "resume", "resolve_config"]



def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fills in every `None` setting from the model (weights, strategy, lr, workers, out)."""
    config = replace(config).validate()
    if config.strategy == "auto" or config.lr == "auto":
        from .advise import advise

        if config.stream or (config.data and is_stream_source(config.data)):
            raise SettingError("--strategy auto and --lr auto probe a listed sample of the data; they do not apply to "
                             "streamed data. Run `transferlab advise` on a folder sample, then pass what it says.")

        advice = advise(config.data, config.model, config.weights, seed=config.seed)
        config = replace(config, strategy=advice.strategy if config.strategy == "auto" else config.strategy,
                         lr=advice.lr if config.lr == "auto" else config.lr, advice=advice.to_dict())
    accelerator = str(config.accelerator).lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise SettingError(f"--accelerator {config.accelerator} asks for a GPU, but PyTorch sees none here (torch "
                           f"{torch.__version__}). Use --accelerator auto (a GPU when there is one) or cpu.")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise SettingError("--accelerator mps needs Apple silicon with PyTorch's MPS backend; use auto or cpu.")
    info = get_model_info(config.model)
    weights = config.weights or ("imagenet" if info.has_pretrained else "none")
    strategy = parse_strategy(config.strategy or ("freeze" if weights != "none" else "full"))
    if strategy.kind != "full" and weights == "none":
        raise SettingError(
            f"strategy='{strategy}' keeps part of the base frozen, which needs pretrained weights, but "
            "weights='none'. Use `--strategy full` to train from scratch, or pretrained weights."
        )
    mixes_features = config.mix_on == "cached" and config.feature_cache and strategy.kind in ("freeze", "two-phase")
    if config.cutmix and mixes_features:
        raise SettingError(f"cutmix={config.cutmix:g} with mix_on='cached' cannot mix the cached features of "
                           f"strategy {strategy} (vectors: there is no rectangle to cut). Use mixup instead, or "
                           "mix_on='images' (CutMix on the images; the base then runs on every batch).")
    lr = config.lr if config.lr is not None else (1e-3 if strategy.kind in ("freeze", "two-phase") else 1e-4)
    workers = default_workers() if config.num_workers is None else config.num_workers
    out = config.out or str(Path("runs") / f"{config.model}-{datetime.now():%Y%m%d-%H%M%S}")
    return replace(config, weights=str(weights), strategy=str(strategy), lr=float(lr), num_workers=int(workers),
                   out=out, finetune_epochs=config.finetune_epochs or config.epochs)


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
        >>> result.metrics["best_val_accuracy"]
        0.97
    """
    with quiet_lightning(), _sigterm_as_interrupt():
        return _fit(config, overwrite, resume, quiet, list(callbacks or []),
                    list(logger if isinstance(logger, Sequence) else [logger] if logger is not None else []))


def _fit(config: TrainConfig, overwrite: bool, resume: bool, quiet: bool, callbacks: list[Callback],
         loggers: list[Logger]) -> TrainResult:
    tune_malloc()
    # a terminal wraps messages between words; a pipe or log file keeps each message on one line
    console = Console(quiet=quiet, stderr=True, soft_wrap=not sys.stderr.isatty())
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
    model = build_classifier(config.model, len(data.classes), weights=config.weights, image_size=config.image_size,
                             head=head, **dict(config.model_kwargs or {}))
    if is_rank_zero():  # only now, with settings, data and model known good; other ranks (DDP) only read
        folder.prepare(overwrite, resume, protect=[config.data])
    pre = Preprocessing.from_model(model, config.image_size)
    config = replace(config, image_size=pre.image_size)
    phases = plan_phases(config)
    # what the first phase trains (the console's "Phase 1: ... trainable" line counts the same way)
    params = count_parameters(apply_strategy(model, phases[0].strategy))
    rank_zero = is_rank_zero()
    if not rank_zero:
        console.quiet = True
    print_data_summary(console, data)
    if rank_zero and not resume:
        report = data.report()
        if isinstance(data, DataSplits):  # what `data info` would say about leaks is said here too
            from ..data.info import find_duplicates

            found = find_duplicates(data)
            report.update(duplicates=found["groups"], warnings=found["warnings"])
            for warning in found["warnings"]:
                console.print(f"[bold yellow]Warning:[/] {warning}", highlight=False)
        folder.write_data_report(report)
        if isinstance(data, DataSplits):  # a stream's split is its index (or shards): nothing to list
            folder.write_split(data.split_rows())
    if rank_zero:
        folder.write_config({**config.to_dict(), "classes": data.classes,
                                             "preprocessing": pre.to_dict(), "parameters": params,
                                             "environment": environment()})
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
    results: dict[int, tuple[str, float | None]] = {}
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    interrupted: TrainingInterrupted | None = None
    try:
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
                raise MissingFileError(f"Cannot resume: '{last}' does not exist (the run saved no epoch yet). "
                                        "Start it again with --overwrite.")
            results[phase.index] = run.run_phase(phase, history, ckpt)
            state["completed"] = sorted(set(state["completed"]) | {phase.index})
            state.setdefault("scores", {})[str(phase.index)] = results[phase.index][1]
            if rank_zero:
                folder.write_state(state)
    except TrainingInterrupted as stop:  # Ctrl+C or SIGTERM: keep what the run has, then stop
        interrupted = stop
        if stop.best_checkpoint:
            results[stop.phase] = (stop.best_checkpoint, stop.score)
    finally:
        if tracking is not None:
            tracking.finish()
        if history.rows and rank_zero:
            best = best_row(history.rows, config.monitor)
            plot_history(history.rows, run_dir / "history.png", best_epoch=best and int(best["epoch"]),
                         title=f"{config.model} ({config.strategy})")

    planned = config.epochs + ((config.finetune_epochs or config.epochs) if str(config.strategy) == "two-phase" else 0)
    metrics = run_metrics(history.rows, config.monitor, planned, time.perf_counter() - started)
    if interrupted is not None:
        _keep_interrupted_run(interrupted, results, snapshots, model, folder, metrics, config, data, pre, head,
                              console, rank_zero)
    if not rank_zero:  # DDP: the other ranks trained their shards; rank 0 writes the results
        return TrainResult(run_dir, metrics, config, data)
    _save_best(results, snapshots, model, folder, metrics, config, data, pre, head)
    evaluation = None
    if isinstance(data, DataSplits):
        evaluation = _report(run_dir, model, data, pre, config, quiet, run.cached_validation_features(phases))
    else:
        console.print("No report.html for streamed data (the validation split is not a file list): run "
                      f"`transferlab evaluate {run_dir} VALIDATION_FOLDER_OR_CSV` on a sample of it.")
    console.print(f"Best val_accuracy {metrics['best_val_accuracy']:.4f} (val_loss {metrics['best_val_loss']:.4f}) "
                  f"at epoch {metrics['best_epoch']}; run folder: {run_dir}"
                  + (" (report.html)" if (run_dir / "report.html").is_file() else ""))
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


def _save_best(results: dict[int, tuple[str, float | None]], snapshots: dict[int, dict[str, torch.Tensor]],
               model: nn.Module, folder: RunFolder, metrics: dict[str, Any], config: TrainConfig, data: Any,
               pre: Preprocessing, head: HeadConfig) -> None:
    """best.ckpt/last.ckpt of the run, the best phase's weights in the model, the bundle, metrics.json."""
    best_phase = _finish_checkpoints(folder.path, results, config)
    if best_phase in snapshots:
        model.load_state_dict(snapshots[best_phase])
    save_bundle(folder.path, model, config.model, data.classes, pre, head=head,
                model_kwargs=dict(config.model_kwargs or {}))
    folder.write_metrics(metrics)


def _keep_interrupted_run(stop: TrainingInterrupted, results: dict[int, tuple[str, float | None]],
                          snapshots: dict[int, dict[str, torch.Tensor]], model: nn.Module, folder: RunFolder,
                          metrics: dict[str, Any], config: TrainConfig, data: Any, pre: Preprocessing,
                          head: HeadConfig, console: Console, rank_zero: bool) -> None:
    """After Ctrl+C: the bundle from the best checkpoint so far (so `predict RUN` works), metrics.json marked
    interrupted, the exact command that resumes; then the interruption goes on to the caller."""
    resume_command = f"transferlab train --resume {folder.path}"
    if rank_zero and results:  # the best weights so far become the bundle
        _save_best(results, snapshots, model, folder,
                   {**metrics, "diverged" if stop.diverged else "interrupted": True}, config, data, pre, head)
    if stop.diverged:
        kept = f" The best finite checkpoint is kept in {folder.path}." if results else ""
        raise TrainingDiverged(f"Training stopped: {stop.diverged}{kept}") from None
    if rank_zero and results:
        best = metrics.get("best_val_accuracy")
        console.print(f"[yellow]Interrupted after epoch {metrics['epochs_run']}.[/] The best model so far "
                      + (f"(val_accuracy {best:.4f}, epoch {metrics['best_epoch']}) " if best is not None else "")
                      + f"is saved in {folder.path}; `transferlab predict {folder.path} IMAGES` uses it.\n"
                      f"Resume with: {resume_command}")
    elif rank_zero:
        console.print(f"[yellow]Interrupted before the first epoch ended:[/] nothing to save yet. Start again, or "
                      f"resume later with: {resume_command}")
    raise stop


def _load_data(config: TrainConfig) -> DataSplits | StreamSource:
    """The run's data: a folder walk / CSV list, or a stream (`--stream`, shard folders, Parquet indexes)."""
    if config.stream or is_stream_source(config.data):
        if config.subset:
            raise SettingError("--subset needs a folder or CSV that can be listed; it does not apply to streamed data "
                             "(shards, Parquet, --stream). Make a smaller index instead.")
        return open_stream(config.data, config.val_split)
    data = load_image_folder(config.data, val_split=config.val_split, seed=config.seed)
    return data.subset(int(config.subset), config.seed) if config.subset else data


def _report(run_dir: Path, model: nn.Module, data: DataSplits, pre: Preprocessing, config: TrainConfig,
            quiet: bool, features: torch.Tensor | None = None) -> Any:
    """Evaluates the final model on the validation split (confusion matrix, misclassified images, ...) and
    writes report.html. With `features` (the cached validation features of a base that never trained) only the
    head runs: no second pass over the images."""
    from ..evaluation.metrics import evaluate_probabilities, evaluate_samples, write_evaluation
    from ..evaluation.report import write_report
    from ..inference.predictor import Predictor, probabilities
    from ..runs.bundle import Bundle

    source = f"the validation split of {data.root}"
    if features is not None and len(features) == len(data.validation):
        start = time.perf_counter()
        head = model.head.eval()
        with torch.inference_mode():
            logits = torch.cat([head(chunk.float()) for chunk in features.split(4096)])
        result = evaluate_probabilities(data.classes, data.validation, probabilities(logits).numpy(),
                                        source + " (the cached features the head was validated on)",
                                        time.perf_counter() - start)
    else:
        predictor = Predictor(Bundle(model, data.classes, pre, {"model": config.model}))
        result = evaluate_samples(predictor, data.validation, source, batch_size=max(64, config.batch_size),
                                  num_workers=config.num_workers, quiet=quiet)
    write_evaluation(result, run_dir)
    write_report(run_dir)
    model.to(memory_format=torch.contiguous_format)
    return result


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
    saved = RunFolder(run_dir).file("config.yaml")
    if not saved.is_file():
        raise MissingFileError(f"Cannot resume: '{saved}' does not exist. Pass the folder of a run made by "
                                "`transferlab train`.")
    config = replace(TrainConfig.from_yaml(saved), out=str(run_dir))
    if epochs is not None:
        folder = RunFolder(run_dir)
        two_phase = parse_strategy(config.strategy or "freeze").kind == "two-phase"
        phase = 2 if two_phase and 1 in folder.state().get("completed", []) else 1
        done = sum(1 for r in folder.history() if int(r.get("phase") or 1) == phase)
        if int(epochs) <= done:
            raise SettingError(f"The run in '{run_dir}' has already trained {done} epochs"
                               + (f" in phase {phase}" if two_phase else "") + f"; --epochs {epochs} adds none. "
                               f"Pass a larger maximum, e.g. --epochs {done + 5}.")
        # the new maximum is for the phase that continues: the fine-tuning phase of a two-phase run once the first
        # phase is done
        config = replace(config, **({"finetune_epochs": int(epochs)} if phase == 2 else {"epochs": int(epochs)}))
    return fit(config, resume=True, quiet=quiet, callbacks=callbacks, logger=logger)
