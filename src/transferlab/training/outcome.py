"""What a run keeps when its phases end, or when Ctrl+C, SIGTERM or a diverging loss stops them: best.ckpt and
last.ckpt, the best phase's weights as the bundle (never weights that are not finite), metrics.json, and the
evaluation of the validation split with report.html.

Example:
    >>> save_best(results, snapshots, model, folder, metrics, config, data, pre, head, phases=2)  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from .._io import atomic_path
from ..data.folder import DataSplits
from ..data.transforms import Preprocessing
from ..errors import TrainingDiverged
from ..models.transfer import HeadConfig
from ..runs.bundle import save_bundle
from ..runs.folder import RunFolder
from .config import TrainConfig
from .phases import TrainingInterrupted

__all__ = ["save_best", "keep_interrupted_run", "report_validation", "load_module_weights"]


def save_best(results: dict[int, str | None], snapshots: dict[int, dict[str, torch.Tensor]], model: nn.Module,
               folder: RunFolder, metrics: dict[str, Any], config: TrainConfig, data: Any, pre: Preprocessing,
               head: HeadConfig, phases: int) -> None:
    """best.ckpt/last.ckpt of the run, the best phase's weights in the model, the bundle, metrics.json. The best
    phase is the phase of the best epoch (`runs.history.best_row`, in metrics.json); weights that are not finite
    never become the bundle."""
    best_phase = metrics.get("best_phase") or max(results, default=1)
    _finish_checkpoints(folder, results, best_phase, phases)
    if best_phase in snapshots:
        model.load_state_dict(snapshots[best_phase])
    broken = [name for name, tensor in model.state_dict().items()
              if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if broken:
        raise TrainingDiverged(f"The model's weights are not finite ({broken[0]} and {len(broken) - 1} more): training "
                               f"diverged. No bundle was written to {folder.path}. Start again with a lower --lr "
                               "(the defaults: 1e-3 for a new head, 1e-4 to fine-tune).")
    save_bundle(folder.path, model, config.model, data.classes, pre, head=head,
                model_kwargs=dict(config.model_kwargs or {}))
    folder.write_metrics(metrics)


def keep_interrupted_run(stop: TrainingInterrupted, results: dict[int, str | None],
                          snapshots: dict[int, dict[str, torch.Tensor]], model: nn.Module, folder: RunFolder,
                          metrics: dict[str, Any], config: TrainConfig, data: Any, pre: Preprocessing,
                          head: HeadConfig, console: Console, rank_zero: bool, phases: int) -> None:
    """After Ctrl+C: the bundle from the best checkpoint so far (so `predict RUN` works), metrics.json marked
    interrupted, the exact command that resumes; then the interruption goes on to the caller."""
    resume_command = f"transferlab train --resume {folder.path}"
    saved = rank_zero and any(results.values()) and metrics.get("best_epoch") is not None
    if saved:  # the best weights so far become the bundle
        save_best(results, snapshots, model, folder,
                   {**metrics, "diverged" if stop.diverged else "interrupted": True}, config, data, pre, head, phases)
    if rank_zero and not saved and stop.diverged:  # what happened is recorded, though no model was kept
        folder.write_metrics({**metrics, "diverged": True})
    if stop.diverged:
        kept = f" The best finite checkpoint is kept in {folder.path}." if saved else " No model was kept."
        raise TrainingDiverged(f"Training stopped: {stop.diverged}{kept}") from None
    if saved:
        best = metrics.get("best_val_accuracy")
        console.print(f"[yellow]Interrupted after epoch {metrics['epochs_run']}.[/] The best model so far "
                      + (f"(val_accuracy {best:.4f}, epoch {metrics['best_epoch']}) " if best is not None else "")
                      + f"is saved in {folder.path}; `transferlab predict {folder.path} IMAGES` uses it.\n"
                      f"Resume with: {resume_command}")
    elif rank_zero:
        console.print(f"[yellow]Interrupted before the first epoch ended:[/] nothing to save yet. Start again, or "
                      f"resume later with: {resume_command}")
    raise stop


def report_validation(run_dir: Path, model: nn.Module, data: DataSplits, pre: Preprocessing, config: TrainConfig,
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


def load_module_weights(module: nn.Module, ckpt: Path) -> None:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})


def _finish_checkpoints(folder: RunFolder, results: dict[int, str | None], best_phase: int, phases: int) -> None:
    """For runs of several phases, makes best.ckpt the best phase's best and last.ckpt the last phase's last."""
    if phases < 2:
        return
    last_phase = max(results, default=phases)
    for source, target in ((results.get(best_phase), folder.checkpoint("best")),
                           (folder.checkpoint("last", last_phase, phases), folder.checkpoint("last"))):
        if source and Path(source).is_file():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
