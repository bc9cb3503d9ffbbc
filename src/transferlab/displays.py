"""Evaluation pictures as plot objects in scikit-learn's Display style.

Each Display holds the data, is made with `from_result(...)` (or built directly), and draws with
`.plot(ax=None)`, which sets `.figure_` and `.ax_`; `.save(path)` writes a PNG atomically.

Example:
    >>> disp = ConfusionMatrixDisplay.from_result(result)  # doctest: +SKIP
    >>> disp.plot(normalize=True).save("confusion_matrix.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ._io import atomic_path  # noqa: E402

__all__ = ["ConfusionMatrixDisplay", "MisclassifiedDisplay", "PerClassDisplay", "RocCurveDisplay",
           "CompareDisplay"]


class _Display:
    figure_: plt.Figure
    ax_: Any

    def save(self, path: str | os.PathLike[str], dpi: int = 100) -> _Display:
        """Writes the figure to `path` as PNG (atomically) and closes it."""
        if not hasattr(self, "figure_"):
            self.plot()
        with atomic_path(path) as tmp:
            self.figure_.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
        plt.close(self.figure_)
        return self


class ConfusionMatrixDisplay(_Display):
    """The confusion matrix: rows are true classes, columns predicted ones.

    Example:
        >>> ConfusionMatrixDisplay([[5, 1], [2, 7]], ["cat", "dog"]).plot().figure_  # doctest: +ELLIPSIS
        <Figure ...>
    """

    def __init__(self, matrix: Sequence[Sequence[float]], labels: Sequence[str]) -> None:
        self.matrix = np.asarray(matrix, dtype=float)
        self.labels = list(labels)

    @classmethod
    def from_result(cls, result: Any) -> ConfusionMatrixDisplay:
        return cls(result.metrics["confusion_matrix"], result.labels)

    def plot(self, ax: Any = None, normalize: bool = False, cmap: str = "Blues") -> ConfusionMatrixDisplay:
        counts = self.matrix
        shown = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None) if normalize else counts
        n = len(self.labels)
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.5, 0.6 * n + 3), max(4, 0.55 * n + 2.5)))
        im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1 if normalize else max(1.0, shown.max()))
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(n), self.labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
        ax.set_yticks(range(n), self.labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix" + (" (normalised by true class)" if normalize else ""))
        if n <= 20:
            threshold = (1 if normalize else shown.max()) / 2
            for i in range(n):
                for j in range(n):
                    text = f"{shown[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
                    if normalize:
                        text += f"\n({int(counts[i, j])})"
                    ax.text(j, i, text, ha="center", va="center", fontsize=8,
                            color="white" if shown[i, j] > threshold else "black")
        self.figure_, self.ax_ = ax.figure, ax
        ax.figure.tight_layout()
        return self


class PerClassDisplay(_Display):
    """Per-class accuracy (recall) as bars, with the support in each label."""

    def __init__(self, per_class: dict[str, dict[str, Any]]) -> None:
        self.per_class = per_class

    @classmethod
    def from_result(cls, result: Any) -> PerClassDisplay:
        return cls(result.metrics["per_class"])

    def plot(self, ax: Any = None) -> PerClassDisplay:
        names = list(self.per_class)
        values = [self.per_class[n]["recall"] for n in names]
        if ax is None:
            _, ax = plt.subplots(figsize=(max(5, 0.5 * len(names) + 2), 4))
        bars = ax.bar(range(len(names)), values, color="tab:blue")
        ax.set_xticks(range(len(names)), [f"{n}\n(n={self.per_class[n]['support']})" for n in names],
                      rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy (recall)")
        ax.set_title("Per-class accuracy")
        for bar, v in zip(bars, values):
            ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, f"{v:.2f}", ha="center", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        self.figure_, self.ax_ = ax.figure, ax
        ax.figure.tight_layout()
        return self


class RocCurveDisplay(_Display):
    """The ROC curve of a two-class model (positive class: the second label)."""

    def __init__(self, fpr: Sequence[float], tpr: Sequence[float], auc: float, positive: str) -> None:
        self.fpr, self.tpr, self.auc, self.positive = list(fpr), list(tpr), float(auc), positive

    @classmethod
    def from_result(cls, result: Any) -> RocCurveDisplay:
        roc = result.metrics["roc_curve"]
        return cls(roc["fpr"], roc["tpr"], result.metrics["roc_auc"], roc["positive"])

    def plot(self, ax: Any = None) -> RocCurveDisplay:
        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(self.fpr, self.tpr, label=f"AUC = {self.auc:.3f}")
        ax.plot([0, 1], [0, 1], "--", color="gray", alpha=0.6)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"ROC (positive: {self.positive})")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        self.figure_, self.ax_ = ax.figure, ax
        return self


class MisclassifiedDisplay(_Display):
    """The highest-loss images (fastai's top losses): true label, predicted label and its confidence."""

    def __init__(self, items: Sequence[dict[str, Any]]) -> None:
        self.items = list(items)

    @classmethod
    def from_result(cls, result: Any, count: int = 9) -> MisclassifiedDisplay:
        losses = result.losses()
        order = losses.argsort(descending=True).tolist()
        pred = result.probabilities.argmax(dim=1)
        items = []
        for i in order:
            if pred[i] == result.samples[i].label:
                continue  # only mistakes; highest loss first
            items.append({"path": result.samples[i].path, "true": result.labels[result.samples[i].label],
                          "predicted": result.labels[int(pred[i])],
                          "confidence": float(result.probabilities[i, pred[i]]), "loss": float(losses[i])})
            if len(items) == count:
                break
        return cls(items)

    def plot(self, columns: int = 3, size: int = 160) -> MisclassifiedDisplay:
        from .data.images import load_rgb

        if not self.items:
            fig, ax = plt.subplots(figsize=(4, 1.5))
            ax.axis("off")
            ax.text(0.5, 0.5, "No misclassified images", ha="center", va="center")
            self.figure_, self.ax_ = fig, ax
            return self
        columns = min(columns, len(self.items))
        rows = -(-len(self.items) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.3 * rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, item in zip(axes.flat, self.items):
            image = load_rgb(item["path"], min_size=size)
            image.thumbnail((size, size))
            ax.imshow(image)
            ax.set_title(f"true: {item['true']}\npred: {item['predicted']} ({item['confidence']:.0%})", fontsize=9,
                         color="tab:red")
        fig.suptitle("Misclassified, highest loss first")
        fig.tight_layout()
        self.figure_, self.ax_ = fig, axes
        return self


class CompareDisplay(_Display):
    """Validation curves of several runs overlaid (the course's side-by-side of regularisation variants)."""

    def __init__(self, runs: dict[str, list[dict[str, Any]]]) -> None:
        self.runs = runs

    def plot(self) -> CompareDisplay:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        for name, rows in self.runs.items():
            for ax, key in zip(axes, ("val_accuracy", "val_loss")):
                pts = [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
                if pts:
                    ax.plot(*zip(*pts), "o-", markersize=3, label=name)
        for ax, title in zip(axes, ("Validation accuracy", "Validation loss")):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        self.figure_, self.ax_ = fig, axes
        return self
