"""Every picture transferlab draws: the training history, image grids, and the evaluation plots as objects in
scikit-learn's Display style (the confusion matrix and ROC curve are scikit-learn's own Displays).

Each Display holds the data, is made with `from_result(...)` (or built directly), and draws with
`.plot(ax=None)`, which sets `.figure_` and `.ax_`; `.save(path)` writes a PNG atomically.

Example:
    >>> disp = ConfusionMatrixDisplay.from_result(result)  # doctest: +SKIP
    >>> disp.plot(normalize=True).save("confusion_matrix.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import matplotlib

if "ipykernel" not in sys.modules:  # a notebook keeps its inline backend; elsewhere never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from .._io import atomic_path  # noqa: E402
from ..errors import SettingError  # noqa: E402
from .fonts import needs_hangul  # noqa: E402

__all__ = ["ConfusionMatrixDisplay", "MisclassifiedDisplay", "PerClassDisplay", "RocCurveDisplay",
           "CompareDisplay", "plot_history", "plot_accuracy_vs_speed"]


class _Display:
    figure_: plt.Figure
    ax_: Any

    def _repr_png_(self) -> bytes:
        """In a notebook a Display shows its picture."""
        import io

        if not hasattr(self, "figure_"):
            self.plot()
        buffer = io.BytesIO()
        self.figure_.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        return buffer.getvalue()

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
        needs_hangul(self.labels)

    @classmethod
    def from_result(cls, result: Any) -> ConfusionMatrixDisplay:
        return cls(result.metrics["confusion_matrix"], result.labels)

    def plot(self, ax: Any = None, normalize: bool = False, cmap: str = "Blues") -> ConfusionMatrixDisplay:
        """Draws scikit-learn's ConfusionMatrixDisplay (counts, or rows normalised by the true class)."""
        counts = self.matrix
        shown = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None) if normalize else counts
        n = len(self.labels)
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.5, 0.6 * n + 3), max(4, 0.55 * n + 2.5)))
        display = skm.ConfusionMatrixDisplay(shown, display_labels=self.labels)
        display.plot(ax=ax, cmap=cmap, values_format=".2f" if normalize else ".0f", include_values=n <= 20,
                     xticks_rotation=45 if n > 4 else "horizontal", colorbar=True)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix" + (" (normalised by true class)" if normalize else ""))
        self.sklearn_ = display
        self.figure_, self.ax_ = ax.figure, ax
        ax.figure.tight_layout()
        return self


class PerClassDisplay(_Display):
    """Per-class accuracy (recall) as bars, with the support in each label."""

    def __init__(self, per_class: dict[str, dict[str, Any]]) -> None:
        needs_hangul(list(per_class))
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
        """Draws scikit-learn's RocCurveDisplay with the chance diagonal."""
        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 4.5))
        display = skm.RocCurveDisplay(fpr=np.asarray(self.fpr), tpr=np.asarray(self.tpr), roc_auc=self.auc,
                                      name=f"positive: {self.positive}")
        display.plot(ax=ax, plot_chance_level=True)
        ax.set_title(f"ROC (positive: {self.positive})")
        ax.grid(alpha=0.3)
        self.sklearn_ = display
        self.figure_, self.ax_ = ax.figure, ax
        return self


class MisclassifiedDisplay(_Display):
    """The highest-loss images (fastai's top losses): true label, predicted label and its confidence."""

    def __init__(self, items: Sequence[dict[str, Any]]) -> None:
        self.items = list(items)
        needs_hangul([f"{i.get('true', '')}{i.get('predicted', '')}" for i in self.items])

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
        from ..data.images import load_rgb

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
        needs_hangul(list(runs))
        self.runs = runs

    def plot(self, ax: Sequence[Any] | None = None) -> CompareDisplay:
        """Validation accuracy and loss of every run; `ax`: two Axes to draw into (default a new figure)."""
        if ax is not None:
            axes = list(np.ravel(ax))
            if len(axes) != 2:
                raise SettingError(f"CompareDisplay draws accuracy and loss: pass ax= two Axes; got {len(axes)}.")
            fig = axes[0].figure
        else:
            fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        for name, rows in self.runs.items():
            for ax, key in zip(axes, ("val_accuracy", "val_loss")):
                pts = [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
                if pts:
                    ax.plot(*zip(*pts), "o-", markersize=3, label=name)
        for ax, title in zip(axes, ("Validation accuracy", "Validation loss")):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        self.figure_, self.ax_ = fig, axes
        return self


def _decorate(ax: plt.Axes, rows: Sequence[dict[str, Any]], name: str, best_epoch: int | None) -> None:
    if best_epoch is not None:
        ax.axvline(best_epoch, color="gray", linestyle=":", label=f"best (epoch {best_epoch})")
    phases = [int(r.get("phase") or 1) for r in rows]
    for prev, cur, row in zip(phases, phases[1:], rows[1:]):
        if cur != prev:  # two-phase runs: mark where fine-tuning starts
            ax.axvline(int(row["epoch"]) - 0.5, color="tab:red", linestyle="--", alpha=0.6,
                       label=f"phase {cur} (unfreeze)")
    ax.set_title(name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def plot_history(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str] | None = None,
                 best_epoch: int | None = None, title: str | None = None, ax: Sequence[Any] | None = None
                 ) -> plt.Figure:
    """Draws Loss and Accuracy, train vs validation per epoch (plus the learning rate when it changes); saves
    to `path` if given.

    Args:
        rows: History rows with 'epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy'.
        path: PNG file to write (atomically).
        best_epoch: Epoch of the best checkpoint, marked with a dotted line.
        title: Figure title.
        ax: Axes to draw into: loss, accuracy (and the learning rate when it changes); default a new figure.

    Example:
        >>> fig = plot_history([{"epoch": 1, "loss": 0.7, "accuracy": 0.5, "val_loss": 0.6,
        ...                      "val_accuracy": 0.6}])
    """
    needs_hangul([title or ""])
    has_lr = len({r.get("lr") for r in rows if r.get("lr") not in (None, "")}) > 1
    if ax is not None:
        axes = list(np.ravel(ax))
        if len(axes) < 2:
            raise SettingError(f"plot_history draws loss and accuracy: pass ax= two Axes (three to see the learning "
                               f"rate too), e.g. `fig, ax = plt.subplots(1, 2)`; got {len(axes)}.")
        has_lr = has_lr and len(axes) > 2
        fig = axes[0].figure
    else:
        fig, axes = plt.subplots(1, 3 if has_lr else 2, figsize=(17 if has_lr else 12, 4.5))
    epochs = [int(r["epoch"]) for r in rows]
    for ax, key, name in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        for prefix, label, style in (("", "train", "o-"), ("val_", "validation", "s-")):
            values = [r.get(prefix + key) for r in rows]
            pts = [(e, float(v)) for e, v in zip(epochs, values) if v not in (None, "")]
            if pts:
                ax.plot(*zip(*pts), style, label=label, markersize=4)
        _decorate(ax, rows, name, best_epoch)
        ax.legend()
    if has_lr:
        pts = [(e, float(r["lr"])) for e, r in zip(epochs, rows) if r.get("lr") not in (None, "")]
        axes[2].plot(*zip(*pts), "o-", color="tab:green", markersize=4)
        axes[2].set_yscale("log")
        _decorate(axes[2], rows, "Learning rate", best_epoch)
    return _finish(fig, path, title)


def _finish(fig: plt.Figure, path: str | os.PathLike[str] | None, title: str | None) -> plt.Figure:
    """Titles and lays out the figure; writes it to `path` (atomically) and closes it when a path is given. A long
    title is wrapped to the figure's width (about 9 characters per inch at the title's size): never clipped."""
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, width=max(20, int(fig.get_figwidth() * 9))))
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
    return fig


def plot_accuracy_vs_speed(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str] | None = None,
                           ax: Any = None) -> plt.Figure:
    """The benchmark's picture: ImageNet top-1 against batch-1 latency, marker size by parameters (Keras' table of
    applications, measured on this machine).

    Example:
        >>> fig = plot_accuracy_vs_speed([{"model": "a", "top1": 0.75, "latency_ms_median": 12.0,
        ...                                "parameters": 4_000_000}])
    """
    fig, ax = plt.subplots(figsize=(7, 5)) if ax is None else (ax.figure, ax)
    plotted = [r for r in rows if r.get("top1") and r.get("latency_ms_median")]
    for r in plotted:
        ax.scatter(r["latency_ms_median"], r["top1"] * 100, s=max(20, r.get("parameters", 0) / 4e5))
        ax.annotate(r["model"], (r["latency_ms_median"], r["top1"] * 100), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xlabel(f"batch-1 latency on {rows[0].get('device', 'cpu') if rows else 'cpu'} (ms, this machine)")
    ax.set_ylabel("ImageNet top-1 (%, course table / torchvision metadata)")
    ax.set_title("Accuracy vs speed (marker size: parameters)")
    ax.grid(alpha=0.3)
    if not plotted:
        ax.text(0.5, 0.5, "no model with a known top-1", ha="center", transform=ax.transAxes)
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
    return fig
