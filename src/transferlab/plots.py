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

__all__ = ["plot_history"]


def plot_history(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str] | None = None,
                 best_epoch: int | None = None, title: str | None = None) -> plt.Figure:
    """Draws two panels, Loss and Accuracy, train vs validation per epoch; saves to `path` if given.

    Args:
        rows: History rows with 'epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy'.
        path: PNG file to write (atomically).
        best_epoch: Epoch of the best checkpoint, marked with a dotted line.
        title: Figure title.

    Example:
        >>> fig = plot_history([{"epoch": 1, "loss": 0.7, "accuracy": 0.5, "val_loss": 0.6,
        ...                      "val_accuracy": 0.6}])
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    epochs = [int(r["epoch"]) for r in rows]
    for ax, key, name in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        for prefix, label, style in (("", "train", "o-"), ("val_", "validation", "s-")):
            values = [r.get(prefix + key) for r in rows]
            pts = [(e, float(v)) for e, v in zip(epochs, values) if v not in (None, "")]
            if pts:
                ax.plot(*zip(*pts), style, label=label, markersize=4)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", linestyle=":", label=f"best (epoch {best_epoch})")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
    return fig
