"""The PyTorch engine of the `Predictor` interface (`inference.loading.load_predictor` decides which engine
reads a path).

Example:
    >>> predictor = Predictor("runs/cd")  # doctest: +SKIP
    >>> predictor.predict(["cat.jpg"], top_k=1)[0]["top"][0]["label"]  # doctest: +SKIP
    'cats'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._console import progress_bar
from ..data.sources import list_images as expand_image_paths  # the name earlier versions exported
from ..errors import check_choice
from ..runs.bundle import Bundle, load_bundle
from .engine import Engine, best_engine, cpu_processes, run_model
from .portable import BasePredictor, Preprocessing, tta_batch, tta_views

__all__ = ["Predictor", "expand_image_paths", "probabilities"]


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities from logits; a single output is a sigmoid (binary) head -> [P(class 0), P(class 1)]."""
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits.float())
        return torch.cat([1 - p, p], dim=-1)
    return torch.softmax(logits.float(), dim=-1)


class Predictor(BasePredictor):
    """Loads a model bundle once and classifies images with PyTorch.

    Args:
        bundle: A run folder, bundle folder, model.safetensors path, or a loaded `Bundle`.
        device: Torch device.
        engine: 'auto' (the fastest correct path here: bf16 autocast + channels_last where the CPU or GPU runs
            bf16 natively, see docs/benchmarks.md) or 'fp32' (eager float32).

    Example:
        >>> predictor = Predictor("runs/x")  # doctest: +SKIP
        >>> predictor.predict(["cat.jpg"], top_k=1)[0]["top"][0]["label"]  # doctest: +SKIP
        'cats'
    """

    def __init__(self, bundle: str | os.PathLike[str] | Bundle, device: str = "cpu", engine: str = "auto") -> None:
        check_choice("engine", engine, ("auto", "fp32"), where="Predictor")
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, device=device)
        self.device = device
        self.engine = best_engine(device) if engine == "auto" else Engine(dtype="float32", channels_last=False,
                                                                          device=device)
        self.engine_name = f"pytorch ({self.engine.get('dtype')})"
        self.model: nn.Module = self.bundle.model.eval().to(device)
        if self.engine.get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.preprocessing = self.bundle.preprocessing
        self.metadata = self.bundle.metadata
        self.ids: list[str] | None = self.bundle.metadata.get("label_ids")

    @property
    def labels(self) -> list[str]:  # type: ignore[override]
        return self.bundle.labels

    def transform(self, image: Any) -> torch.Tensor:
        """A decoded image as the model's input tensor [3, S, S] (the shared `preprocess`)."""
        return torch.from_numpy(self.preprocess(image))

    def logits(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Model outputs (float32) for a preprocessed batch, on this predictor's engine."""
        return run_model(self.model, torch.as_tensor(batch), self.engine).float()

    def batch_probabilities(self, batch: torch.Tensor | np.ndarray) -> np.ndarray:
        return probabilities(self.logits(torch.as_tensor(batch))).cpu().numpy()

    def predict_proba(self, paths: Sequence[str | os.PathLike[str]], tta: str = "none", batch_size: int = 64,
                      num_workers: int = 0, quiet: bool = True) -> tuple[np.ndarray, np.ndarray | None,
                                                                         dict[int, str]]:
        """As `BasePredictor.predict_proba`, decoding in `num_workers` DataLoader processes; on a CPU those
        processes (one per thread, see `cpu_processes`) also run the model, single-threaded."""
        from torch.utils.data import DataLoader

        dataset = _Files([str(p) for p in paths], self.preprocessing, tta)
        step = tta_batch(batch_size, tta)
        processes = cpu_processes(self.device, num_workers, len(dataset), step)
        score = _Score(self)  # in the loading processes, or here on the batches they decoded
        loader = DataLoader(dataset, batch_size=step, num_workers=processes or num_workers,
                            collate_fn=score if processes else list)
        plain = np.zeros((len(dataset), len(self.labels)))
        averaged = None if tta == "none" else np.zeros_like(plain)
        failed: dict[int, str] = {}
        with progress_bar(quiet) as progress:
            task = progress.add_task("Predicting", total=len(dataset))
            for indices, probs, errors in loader if processes else map(score, loader):
                failed.update(errors)
                if indices:
                    self._fill(probs, indices, plain, averaged)
                progress.advance(task, len(indices) + len(errors))
        return plain, averaged, failed


class _Files(torch.utils.data.Dataset):
    """Image files -> (index, `tta_views` array or None, error or None); unreadable files are reported, not
    skipped."""

    def __init__(self, paths: list[str], pre: Preprocessing, tta: str = "none") -> None:
        self.paths, self.pre, self.tta = paths, pre, tta

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, str | None]:
        from ..data.images import load_rgb

        try:
            image = load_rgb(self.paths[index], min_size=self.pre.resize_size)
            return index, tta_views(image, self.pre, self.tta), None
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
            return index, None, f"cannot read image: {e}"


class _Score:
    """Runs the predictor on a batch of `_Files` items (as a DataLoader `collate_fn`, inside the loading process):
    (indices, [N, V, C] probabilities of their views, {index: error})."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def __call__(self, items: list) -> tuple[list[int], np.ndarray | None, dict[int, str]]:
        good = [(i, views) for i, views, error in items if error is None]
        probs = self.predictor.view_probabilities(torch.from_numpy(np.stack([v for _, v in good]))) if good else None
        return [i for i, _ in good], probs, {i: error for i, _, error in items if error is not None}
