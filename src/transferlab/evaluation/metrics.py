"""Evaluation of a trained model on labelled images: the metrics, the pictures and the files.

Metrics come from torchmetrics: accuracy, top-k accuracy, per-class precision/recall/F1 and support, macro and
weighted averages, the confusion matrix (counts and row-normalised), the ROC curve and AUC for two classes,
and the expected calibration error. With test-time augmentation (`tta='flip'`) the metrics are computed
again on the average of each image's and its mirror image's probabilities, and reported separately.

Example:
    >>> result = evaluate("runs/cd", "cats_and_dogs_filtered/test")  # doctest: +SKIP
    >>> result.metrics["accuracy"]  # doctest: +SKIP
    0.9312
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import functional as tm

from ..data.folder import Sample
from ..errors import SettingError
from ..inference.loading import check_tta, load_predictor
from ..inference.portable import TTA_CHOICES, BasePredictor

__all__ = ["EvalResult", "evaluate", "evaluate_samples", "evaluate_probabilities", "resolve_eval_samples",
           "compute_metrics", "TTA_CHOICES",
           "write_evaluation"]


@dataclass
class EvalResult:
    """What `evaluate` measured.

    Attributes:
        labels: Class names (the model's).
        samples: The evaluated images with their true labels.
        probabilities: [N, C] class probabilities (without TTA).
        metrics: `compute_metrics` of `probabilities`.
        tta_metrics: The same on the TTA probabilities, or None.
        tta_probabilities: [N, C] probabilities averaged over each image's test-time views, or None.
        skipped: Images that could not be read, each {"path", "reason"}.
        source: What was evaluated (the folder, or the run's validation split).
        seconds: Wall time of the predictions.
        tta: The test-time augmentation of `tta_metrics`: 'none', 'flip' or 'ten-crop'.
    """

    labels: list[str]
    samples: list[Sample]
    probabilities: torch.Tensor
    metrics: dict[str, Any]
    tta_metrics: dict[str, Any] | None = None
    tta_probabilities: torch.Tensor | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0
    tta: str = "none"

    @property
    def targets(self) -> torch.Tensor:
        return torch.tensor([s.label for s in self.samples], dtype=torch.long)

    def losses(self) -> torch.Tensor:
        """Per-image cross-entropy of the true class (for the top-losses picture)."""
        p = self.probabilities.clamp_min(1e-12)
        return -torch.log(p[torch.arange(len(p)), self.targets])

    def plot_confusion_matrix(self, normalize: bool | None = None, ax: Any = None) -> Any:
        """The confusion matrix as a Display (`.figure_`, `.ax_`); normalised by row by default above two classes.

        Example:
            >>> evaluate("runs/cd", "test/").plot_confusion_matrix(normalize=True)  # doctest: +SKIP
        """
        from .displays import ConfusionMatrixDisplay

        normalize = len(self.labels) > 2 if normalize is None else normalize
        return _closed(ConfusionMatrixDisplay.from_result(self).plot(ax=ax, normalize=normalize))

    def plot_misclassified(self, count: int = 9, columns: int = 3) -> Any:
        """The `count` misclassified images with the highest loss (true label, prediction, confidence)."""
        from .displays import MisclassifiedDisplay

        return _closed(MisclassifiedDisplay.from_result(self, count).plot(columns=columns))

    def plot_per_class(self, ax: Any = None) -> Any:
        """Per-class accuracy (recall) as a bar chart."""
        from .displays import PerClassDisplay

        return _closed(PerClassDisplay.from_result(self).plot(ax=ax))

    def plot_roc(self, ax: Any = None) -> Any:
        """The ROC curve of a two-class evaluation."""
        from .displays import RocCurveDisplay

        if "roc_curve" not in self.metrics:
            raise SettingError(f"A ROC curve needs two classes; this evaluation has {len(self.labels)}. Use "
                               "plot_confusion_matrix() or plot_per_class().")
        return _closed(RocCurveDisplay.from_result(self).plot(ax=ax))

    def _repr_html_(self) -> str:
        """In a notebook: the headline metrics, the confusion matrix and the misclassified images."""
        import html

        from .html import cards_html, figure_html

        m = self.metrics
        k = next((key for key in m if key.startswith("top") and key.endswith("_accuracy")), None)
        cards = cards_html([("accuracy", m.get("accuracy")), *([(k.replace("_", " "), m[k])] if k else []),
                            ("loss", m.get("loss")), ("macro F1", (m.get("macro_avg") or {}).get("f1")),
                            ("images", m.get("images"))])
        tta = (f"<p>With {self.tta} TTA: accuracy <b>{self.tta_metrics['accuracy']:.4f}</b></p>" if self.tta_metrics
               else "")
        skipped = f"<p>{len(self.skipped)} image(s) could not be read.</p>" if self.skipped else ""
        return (f"<div><b>Evaluation</b> of {html.escape(self.source)}{cards}{tta}{skipped}"
                f"{figure_html(self.plot_confusion_matrix(), width=420)}"
                f"{figure_html(self.plot_misclassified(count=6))}</div>")


def _closed(display: Any) -> Any:
    """Closes a returned Display's figure: a notebook then shows it once, as the cell's value, not twice."""
    import matplotlib.pyplot as plt

    plt.close(display.figure_)
    return display


def resolve_eval_samples(data: str | os.PathLike[str], labels: list[str],
                         run_dir: str | os.PathLike[str] | None = None) -> tuple[list[Sample], list[dict], str]:
    """(samples, skipped files, source) of the labelled images to evaluate, labelled in the model's class order:
    `data.sources.open_labelled`, which reads every form `train` takes (its test split where it has one, else its
    validation split, else all of it; the very folder the run was split from gives the run's validation split).

    Raises:
        FileNotFoundError: DATA does not exist.
        ValueError: A class the model does not know, or no images.
    """
    from ..data.sources import open_labelled
    from ..runs.folder import RunFolder

    run = RunFolder(run_dir) if run_dir else None
    found = open_labelled(data, labels, (run.config().get("data"), run.split_rows()) if run else None)
    return found.samples, found.skipped, found.source


def compute_metrics(probabilities: torch.Tensor, targets: torch.Tensor, labels: list[str],
                    top_k: int = 5) -> dict[str, Any]:
    """All metrics of the module docstring, as plain JSON-ready data.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        >>> compute_metrics(p, torch.tensor([0, 1, 1]), ["cat", "dog"])["accuracy"]
        0.6667
    """
    c = len(labels)
    k = min(top_k, c - 1)  # top-k with k >= the number of classes is always 1.0: not reported
    p, y = probabilities.float(), targets.long()
    r4 = lambda v: round(float(v), 4)  # noqa: E731
    precision = tm.classification.multiclass_precision(p, y, c, average=None, zero_division=0)
    recall = tm.classification.multiclass_recall(p, y, c, average=None, zero_division=0)
    f1 = tm.classification.multiclass_f1_score(p, y, c, average=None, zero_division=0)
    support = torch.bincount(y, minlength=c)
    counts = tm.classification.multiclass_confusion_matrix(p, y, c)
    normalised = counts.float() / counts.sum(dim=1, keepdim=True).clamp_min(1)
    per_class = {name: {"precision": r4(precision[i]), "recall": r4(recall[i]), "f1": r4(f1[i]),
                        "support": int(support[i]), "accuracy": r4(recall[i])} for i, name in enumerate(labels)}
    weights = support.float() / support.sum().clamp_min(1)
    metrics: dict[str, Any] = {
        "images": int(len(y)),
        "accuracy": r4(tm.classification.multiclass_accuracy(p, y, c, average="micro")),
        **({f"top{k}_accuracy": r4(tm.classification.multiclass_accuracy(p, y, c, average="micro", top_k=k))}
           if k >= 2 else {}),
        "loss": r4(F.nll_loss(p.clamp_min(1e-12).log(), y)),
        "macro_avg": {"precision": r4(precision.mean()), "recall": r4(recall.mean()), "f1": r4(f1.mean())},
        "weighted_avg": {"precision": r4((precision * weights).sum()), "recall": r4((recall * weights).sum()),
                         "f1": r4((f1 * weights).sum())},
        "per_class": per_class,
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalized": [[r4(v) for v in row] for row in normalised.tolist()],
        "expected_calibration_error": r4(tm.classification.multiclass_calibration_error(p, y, c, n_bins=15)),
        "labels": list(labels),
    }
    if c == 2 and len(set(y.tolist())) == 2:  # a ROC curve needs images of both classes; else it is undefined
        fpr, tpr, thresholds = tm.classification.binary_roc(p[:, 1], y)
        metrics["roc_auc"] = r4(tm.classification.binary_auroc(p[:, 1], y))
        metrics["roc_curve"] = {"fpr": [r4(v) for v in fpr], "tpr": [r4(v) for v in tpr],
                                "thresholds": [r4(min(v, 1.0)) for v in thresholds], "positive": labels[1]}
    return metrics


def evaluate(model: str | os.PathLike[str] | BasePredictor, data: str | os.PathLike[str], tta: str = "none",
             batch_size: int = 64, num_workers: int | None = None, quiet: bool = True, top_k: int = 5) -> EvalResult:
    """Evaluates a run or bundle (or a `Predictor`) on labelled images; see `resolve_eval_samples` for DATA.

    Args:
        model: Run folder, bundle folder or model.safetensors, or a Predictor.
        data: The labelled images.
        tta: 'none', 'flip' (also score the average with the mirror image) or 'ten-crop' (the average over
            the centre and four corner crops and their mirror images); reported separately.
        batch_size: Images per batch.
        num_workers: Loading processes (None: from the CPU count; 0: none). On a CPU, the PyTorch engine runs the
            model in them too, one single-threaded process per thread.
        quiet: No progress bar.
        top_k: k of the top-k accuracy.
    """
    from ..errors import check_choice

    check_choice("tta", tta, TTA_CHOICES, where="evaluate")
    predictor = model if isinstance(model, BasePredictor) else load_predictor(model)
    run_dir = None if isinstance(model, BasePredictor) else Path(model) if Path(model).is_dir() else None
    samples, skipped, source = resolve_eval_samples(data, predictor.labels, run_dir)
    return evaluate_samples(predictor, samples, source, tta, batch_size, num_workers, quiet, top_k, skipped)


def evaluate_samples(predictor: BasePredictor, samples: list[Sample], source: str = "", tta: str = "none",
                     batch_size: int = 64, num_workers: int | None = None, quiet: bool = True, top_k: int = 5,
                     skipped: list[dict] | None = None) -> EvalResult:
    """Evaluates `predictor` on labelled `samples` (labels index `predictor.labels`)."""
    from .._runtime import default_workers

    check_tta(tta, predictor, where="evaluate")
    skipped = list(skipped or [])
    start = time.perf_counter()
    workers = default_workers() if num_workers is None else num_workers
    probs, tta_probs, failed = predictor.predict_proba([s.path for s in samples], tta=tta, batch_size=batch_size,
                                                       num_workers=workers, quiet=quiet)
    seconds = time.perf_counter() - start
    probs = torch.as_tensor(np.asarray(probs), dtype=torch.float32)
    tta_probs = None if tta_probs is None else torch.as_tensor(np.asarray(tta_probs), dtype=torch.float32)
    keep = [i for i in range(len(samples)) if i not in failed]
    skipped += [{"path": samples[i].path, "reason": failed[i]} for i in sorted(failed)]
    samples = [samples[i] for i in keep]
    probs = probs[keep]
    if not samples:
        raise SettingError(f"None of the images in '{source}' could be read.")
    targets = torch.tensor([s.label for s in samples])
    metrics = compute_metrics(probs, targets, predictor.labels, top_k)
    tta_metrics = None
    if tta_probs is not None:
        tta_probs = tta_probs[keep]
        tta_metrics = compute_metrics(tta_probs, targets, predictor.labels, top_k)
    return EvalResult(predictor.labels, samples, probs, metrics, tta_metrics, tta_probs, skipped, source, seconds,
                      tta)


def evaluate_probabilities(labels: list[str], samples: list[Sample], probabilities: Any, source: str = "",
                           seconds: float = 0.0, top_k: int = 5) -> EvalResult:
    """An EvalResult from probabilities computed elsewhere: the post-fit report of a run that trained its head on
    cached features scores those same features, so the validation images are not decoded or run again.

    Example:
        >>> r = evaluate_probabilities(["cat", "dog"], [Sample("a.jpg", 0)], [[0.8, 0.2]])
        >>> r.metrics["accuracy"]
        1.0
    """
    probs = torch.as_tensor(np.asarray(probabilities), dtype=torch.float32)
    targets = torch.tensor([s.label for s in samples])
    return EvalResult(list(labels), list(samples), probs, compute_metrics(probs, targets, list(labels), top_k),
                      source=source, seconds=seconds)


def write_evaluation(result: EvalResult, out_dir: str | os.PathLike[str], prefix: str = "") -> dict[str, Path]:
    """Writes eval_metrics.json and the pictures (confusion_matrix.png, misclassified.png, per_class.png,
    roc.png for two classes) into `out_dir`; returns the paths by name."""
    from .._io import write_json
    from .displays import ConfusionMatrixDisplay, MisclassifiedDisplay, PerClassDisplay, RocCurveDisplay

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "metrics": write_json(out / f"{prefix}eval_metrics.json", {
            **result.metrics, "source": result.source, "seconds": round(result.seconds, 2),
            "skipped": result.skipped, **({"tta": {"kind": result.tta, **result.tta_metrics}} if result.tta_metrics
                                          else {})}),
        "confusion_matrix": out / f"{prefix}confusion_matrix.png",
        "misclassified": out / f"{prefix}misclassified.png",
        "per_class": out / f"{prefix}per_class.png",
    }
    ConfusionMatrixDisplay.from_result(result).plot(normalize=len(result.labels) > 2).save(files["confusion_matrix"])
    MisclassifiedDisplay.from_result(result).plot().save(files["misclassified"])
    PerClassDisplay.from_result(result).plot().save(files["per_class"])
    if "roc_curve" in result.metrics:
        files["roc"] = out / f"{prefix}roc.png"
        RocCurveDisplay.from_result(result).plot().save(files["roc"])
    return files
