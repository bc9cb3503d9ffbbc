"""Pictures: the training history (loss and accuracy, train vs validation), as in the course."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ._io import atomic_path  # noqa: E402

__all__ = ["plot_history", "image_grid"]


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
                 best_epoch: int | None = None, title: str | None = None) -> plt.Figure:
    """Draws Loss and Accuracy, train vs validation per epoch (plus the learning rate when it changes); saves
    to `path` if given.

    Args:
        rows: History rows with 'epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy'.
        path: PNG file to write (atomically).
        best_epoch: Epoch of the best checkpoint, marked with a dotted line.
        title: Figure title.

    Example:
        >>> fig = plot_history([{"epoch": 1, "loss": 0.7, "accuracy": 0.5, "val_loss": 0.6,
        ...                      "val_accuracy": 0.6}])
    """
    has_lr = len({r.get("lr") for r in rows if r.get("lr") not in (None, "")}) > 1
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
    """Titles and lays out the figure; writes it to `path` (atomically) and closes it when a path is given."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
    return fig


def _denormalize(x: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    import torch

    return (x * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]).clamp(0, 1).permute(1, 2, 0)


def image_grid(images: Sequence[Any], titles: Sequence[str], path: str | os.PathLike[str] | None = None,
               mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
               columns: int = 3, title: str | None = None) -> plt.Figure:
    """A grid of normalised image tensors [3, H, W] with titles (the course's `plt.subplot(3, 3, i + 1)`).

    Example:
        >>> fig = image_grid([torch.zeros(3, 8, 8)], ["cat"])  # doctest: +SKIP
    """
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, name in zip(axes.flat, images, titles):
        ax.imshow(_denormalize(img, mean, std).numpy())
        ax.set_title(name, fontsize=9)
    return _finish(fig, path, title)


def prediction_grid(results: Sequence[dict[str, Any]], path: str | os.PathLike[str] | None = None,
                    columns: int = 3, title: str | None = None, size: int = 224) -> plt.Figure:
    """The images of `predict`/`classify` results with their top-1 label and probability as titles (the
    course's `plt.title(decode_predictions(...))`); unreadable images are left out.

    Example:
        >>> fig = prediction_grid(classify(["cat.jpg"]), "grid.png")  # doctest: +SKIP
    """
    from .data.images import load_rgb

    shown = [r for r in results if r.get("top")]
    if not shown:
        raise ValueError("No readable images to draw: every image failed to load.")
    columns = max(1, min(columns, len(shown)))
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, shown):
        image = load_rgb(r["path"], min_size=size)
        image.thumbnail((size, size))
        ax.imshow(image)
        best = r["top"][0]
        ax.set_title(f"{best['label']} ({best['probability']:.1%})", fontsize=9)
    return _finish(fig, path, title)
