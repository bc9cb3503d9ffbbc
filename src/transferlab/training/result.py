"""What a training run returns: `TrainResult`, which also shows itself in a notebook."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.folder import DataSplits
from ..data.stream import StreamSource
from ..errors import SettingError
from ..evaluation.displays import plot_history
from ..runs.folder import RunFolder
from ..runs.history import best_row
from .config import TrainConfig

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """What `fit` and `train` return: the run folder and the final metrics (also in `metrics.json`).

    In a notebook it shows itself: the metric cards, the history plot and the validation report.

    Attributes:
        run_dir: The run folder.
        metrics: best_val_accuracy, best_val_loss, best_epoch, epochs_run, wall_seconds, ...
        config: The resolved settings.
        data: The data splits the run trained on (None for a run opened with `load_run`).
        evaluation: The post-fit evaluation on the validation split (None for streamed data).

    Example:
        >>> result = train("cats_and_dogs_filtered", epochs=5)  # doctest: +SKIP
        >>> result.plot_history()  # doctest: +SKIP
    """

    run_dir: Path
    metrics: dict[str, Any]
    config: TrainConfig
    data: DataSplits | StreamSource | None
    evaluation: Any = None

    @property
    def history(self) -> list[dict[str, Any]]:
        """The rows of history.csv: one per epoch (loss, accuracy, val_loss, val_accuracy, lr, seconds, phase)."""
        return RunFolder(self.run_dir).history()

    def plot_history(self, ax: Any = None) -> Any:
        """Loss and accuracy per epoch, train vs validation, the best epoch marked: a new matplotlib Figure, or,
        drawn into the Axes `ax`, those Axes (as pandas and seaborn return them: the figure is the caller's, and a
        notebook shows it once).

        Args:
            ax: Two Axes (three to see the learning rate) to draw into; default a new figure.
        """
        import matplotlib.pyplot as plt

        rows = self.history
        best = best_row(rows, self.config.monitor)
        fig = plot_history(rows, best_epoch=best and int(best["epoch"]), ax=ax,
                           title=f"{self.config.model} ({self.config.strategy})" if ax is None else None)
        if ax is None:
            plt.close(fig)  # a new figure is returned, not left open: a notebook shows it once
            return fig
        return ax

    def evaluate(self, data: str | os.PathLike[str] | None = None, tta: str = "none") -> Any:
        """Evaluates the run's model (an `EvalResult`, which shows its confusion matrix and mistakes in a notebook).

        Args:
            data: Labelled images (a folder of class folders); default the run's own validation split.
            tta: 'none', 'flip' or 'ten-crop' (see `evaluate`).
        """
        from ..data.folder import Sample
        from ..evaluation.metrics import evaluate, evaluate_samples
        from ..inference.loading import load_predictor

        if data is not None:
            return evaluate(self.run_dir, data, tta=tta)
        if tta == "none" and self.evaluation is not None:
            return self.evaluation
        predictor = load_predictor(self.run_dir)
        index = {name: i for i, name in enumerate(predictor.labels)}
        samples = [Sample(r["path"], index[r["label"]]) for r in RunFolder(self.run_dir).split_rows()
                   if r["split"] == "validation"]
        if not samples:
            raise SettingError(f"The run in '{self.run_dir}' lists no validation split (split.csv); pass the images "
                               "to evaluate: result.evaluate('DATA/test').")
        return evaluate_samples(predictor, samples, "the run's validation split (split.csv)", tta=tta)

    def predict(self, images: Any, top_k: int = 3) -> Any:
        """Classifies image files or folders with the run's best model (shown as pictures in a notebook)."""
        from ..inference.loading import predict

        return predict(self.run_dir, [images] if isinstance(images, (str, os.PathLike)) else images, top_k=top_k)

    def _repr_html_(self) -> str:
        import html

        from ..evaluation.html import cards_html, figure_html

        m = self.metrics
        seconds = m.get("wall_seconds")
        cards = cards_html([("best val_accuracy", m.get("best_val_accuracy")),
                            ("best val_loss", m.get("best_val_loss")), ("best epoch", m.get("best_epoch")),
                            ("epochs run", m.get("epochs_run")),
                            ("wall time", f"{seconds:.0f} s" if isinstance(seconds, (int, float)) else None)])
        head = (f"<b>{html.escape(self.config.model)}</b>, strategy {html.escape(str(self.config.strategy))}; run "
                f"folder <code>{html.escape(str(self.run_dir))}</code>")
        history = figure_html(self.run_dir / "history.png")
        if self.evaluation is not None:
            evaluation = self.evaluation._repr_html_()
        else:  # a run opened with load_run: the pictures its report has
            evaluation = "".join(figure_html(self.run_dir / f"{name}.png", width=width)
                                 for name, width in (("confusion_matrix", 420), ("misclassified", None)))
        return f"<div>{head}{cards}{history}{evaluation}</div>"

    def __repr__(self) -> str:
        m = self.metrics
        return (f"TrainResult(run_dir='{self.run_dir}', best_val_accuracy={m.get('best_val_accuracy')}, "
                f"best_epoch={m.get('best_epoch')})")
