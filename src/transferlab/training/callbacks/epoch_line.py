"""One persistent line per epoch, flushed as the epoch ends, like Keras' `verbose=2`:

    Epoch 3/30  loss 0.213  accuracy 0.921  val_loss 0.180  val_accuracy 0.944  lr 1e-3  12.1 s  (best)

in a terminal (above the live progress bar), in a pipe or log file (where no bar is drawn) and in a notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from ..._console import EpochTable
from ...runs.history import METRICS, best_row, is_better
from .history import HistoryCallback

__all__ = ["EpochLine", "format_epoch_line", "epoch_cells", "EPOCH_COLUMNS"]

def format_epoch_line(row: dict[str, Any], of: int | None = None, best: bool = False, phase: int | None = None,
                      epoch: int | None = None) -> str:
    """The line for one history row.

    Example:
        >>> format_epoch_line({"epoch": 3, "loss": 0.213, "accuracy": 0.921, "val_loss": 0.18, "val_accuracy": 0.944,
        ...                    "lr": 0.001, "seconds": 12.1}, of=30, best=True)
        'Epoch 3/30  loss 0.213  accuracy 0.921  val_loss 0.180  val_accuracy 0.944  lr 1e-3  12.1 s  (best)'
    """
    number = f"{epoch if epoch is not None else row['epoch']}" + (f"/{of}" if of else "")
    parts = [f"Phase {phase}, epoch {number}" if phase else f"Epoch {number}"]
    parts += [f"{key} {row[key]:.3f}" for key in METRICS if row.get(key) is not None]
    if row.get("lr") is not None:
        mantissa, exponent = f"{row['lr']:.1e}".split("e")
        parts.append(f"lr {mantissa.removesuffix('.0')}e{int(exponent)}")
    if row.get("seconds") is not None:
        parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts) + ("  (best)" if best else "")


EPOCH_COLUMNS = ["phase", "epoch", *METRICS, "lr", "time", "best"]


def epoch_cells(row: dict[str, Any], of: int | None, best: bool, phase: int | None, epoch: int) -> list[str]:
    """The cells of one epoch's row in a notebook's table (`EPOCH_COLUMNS`): the numbers of its epoch line."""
    lr = row.get("lr")
    return [str(phase or 1), f"{epoch}" + (f"/{of}" if of else ""),
            *(f"{row[key]:.4f}" if row.get(key) is not None else "" for key in METRICS),
            f"{lr:.1e}" if lr is not None else "", f"{row['seconds']:.1f} s" if row.get("seconds") is not None else "",
            "✓" if best else ""]


class EpochLine(Callback):
    """Prints `format_epoch_line` for each epoch as it ends, marking "(best)" each epoch that becomes the run's best
    so far (`runs.history.is_better`, over every earlier epoch of every phase: the model the run keeps).

    Args:
        history: The run's HistoryCallback (its row of the epoch is the one printed: the same numbers as
            history.csv).
        monitor: 'val_accuracy' or 'val_loss'.
        show: Where lines go (a console's print).
        phase: The phase number of a run with several phases (printed), or None.
        table: In a notebook: the phase's table, which gets a row per epoch instead of a printed line.
    """

    def __init__(self, history: HistoryCallback, monitor: str, show: Callable[[str], None],
                 phase: int | None = None, table: EpochTable | None = None) -> None:
        self.history, self.monitor, self.show, self.phase, self.table = history, monitor, show, phase, table

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.history.rows:
            return
        row = self.history.rows[-1]
        improved = is_better(row, best_row(self.history.rows[:-1], self.monitor), self.monitor)
        line = format_epoch_line(row, trainer.max_epochs, improved, self.phase, trainer.current_epoch + 1)
        if self.table is not None:
            self.table.add(epoch_cells(row, trainer.max_epochs, improved, self.phase, trainer.current_epoch + 1), line)
            return
        bar = getattr(trainer.progress_bar_callback, "progress", None)
        if bar is not None and getattr(bar, "live", None) is not None and bar.live.is_started:
            bar.console.print(line, markup=False, highlight=False)  # above the live bar, which keeps running
        else:
            self.show(line)
