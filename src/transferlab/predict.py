"""Inference: images in, top-k labels with probabilities out."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .bundle import Bundle, load_bundle
from .data.images import is_image_file, load_rgb
from .data.transforms import eval_transform

__all__ = ["Predictor", "predict", "expand_image_paths", "probabilities"]


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities from logits; a single output is a sigmoid (binary) head -> [P(class 0), P(class 1)]."""
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits.float())
        return torch.cat([1 - p, p], dim=-1)
    return torch.softmax(logits.float(), dim=-1)


def expand_image_paths(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expands folders into the image files below them (sorted); files are kept as given.

    Raises:
        FileNotFoundError: An input does not exist.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"Image or folder '{p}' does not exist.")
    return out


class Predictor:
    """Loads a model bundle once and classifies images.

    Args:
        bundle: A run folder, bundle folder, model.safetensors path, or a loaded `Bundle`.
        device: Torch device.
        engine: 'auto' (the fastest correct path here: bf16 autocast + channels_last where the CPU or GPU runs
            bf16 natively, see docs/benchmarks.md) or 'fp32' (eager float32).

    Example:
        >>> predictor = Predictor("runs/x")  # doctest: +SKIP
        >>> predictor.predict(["cat.jpg"], top_k=1)[0]["top"][0]["label"]
        'cats'
    """

    def __init__(self, bundle: str | os.PathLike[str] | Bundle, device: str = "cpu", engine: str = "auto") -> None:
        from ._errors import check_choice
        from .features import Engine, best_engine

        check_choice("engine", engine, ("auto", "fp32"), where="Predictor")
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, device=device)
        self.device = device
        self.engine = best_engine(device) if engine == "auto" else Engine(dtype="float32", channels_last=False,
                                                                          device=device)
        self.model: nn.Module = self.bundle.model.eval().to(device)
        if self.engine.get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.transform = eval_transform(self.bundle.preprocessing)
        self.ids: list[str] | None = self.bundle.metadata.get("label_ids")

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Model outputs (float32) for a preprocessed batch, on this predictor's engine."""
        from contextlib import nullcontext

        dtype = getattr(torch, self.engine.get("dtype", "float32"))
        x = batch.to(self.device)
        if self.engine.get("channels_last") and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(x.device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
        with torch.inference_mode(), autocast:
            return self.model(x).float()

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    def image_probabilities(self, images: Sequence[Any], tta: str = "none") -> Any:
        """[N, C] probabilities (numpy) of PIL images already loaded as RGB (the web service's entry point)."""
        batch = torch.stack([self.transform(im) for im in images])
        return self.batch_probabilities(batch, tta).numpy()

    def batch_probabilities(self, batch: torch.Tensor, tta: str = "none") -> torch.Tensor:
        """Class probabilities of a preprocessed batch; with tta='flip', averaged with the mirror images'."""
        probs = probabilities(self.logits(batch))
        if tta == "flip":
            probs = (probs + probabilities(self.logits(batch.flip(-1)))) / 2
        return probs

    def predict_proba(self, paths: Sequence[str | os.PathLike[str]], tta: str = "none", batch_size: int = 64,
                      num_workers: int = 0, quiet: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor | None, dict[int, str]]:
        """[N, C] probabilities of image files (rows of unreadable files are zero), the TTA probabilities
        (tta='flip') or None, and {index: reason} of the unreadable files."""
        from torch.utils.data import DataLoader

        from .features import _progress

        dataset = _Files([str(p) for p in paths], self.transform, self.bundle.preprocessing.resize_size)
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=_collate)
        size = self.bundle.preprocessing.image_size
        plain = torch.zeros(len(dataset), len(self.labels))
        flipped = torch.zeros(len(dataset), len(self.labels)) if tta == "flip" else None
        failed: dict[int, str] = {}
        with _progress(quiet) as progress:
            task = progress.add_task("Predicting", total=len(dataset))
            for indices, tensors, errors in loader:
                failed.update(errors)
                if indices:
                    batch = torch.stack(tensors) if tensors else torch.zeros(0, 3, size, size)
                    p = probabilities(self.logits(batch))
                    plain[indices] = p
                    if flipped is not None:
                        flipped[indices] = (p + probabilities(self.logits(batch.flip(-1)))) / 2
                progress.advance(task, len(indices) + len(errors))
        return plain, flipped, failed

    @torch.inference_mode()
    def predict(self, paths: Sequence[str | os.PathLike[str]], top_k: int = 3, batch_size: int = 32,
                tta: str = "none") -> list[dict[str, Any]]:
        """Returns, per image, {"path", "top": [{"label", "probability"}...]} or {"path", "error"}.

        With tta='flip' the probabilities are the average of the image's and its mirror image's."""
        k = max(1, min(int(top_k), len(self.labels)))
        results: list[dict[str, Any]] = []
        pending: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            if not pending:
                return
            probs = self.batch_probabilities(torch.stack([t for _, t in pending]), tta)
            values, indices = probs.topk(k, dim=-1)
            for (slot, _), vals, idxs in zip(pending, values.tolist(), indices.tolist()):
                results[slot]["top"] = [
                    {**({"wnid": self.ids[i]} if self.ids else {}), "label": self.labels[i],
                     "probability": round(v, 6)} for v, i in zip(vals, idxs)]
            pending.clear()

        for path in paths:
            results.append({"path": str(path)})
            try:
                tensor = self.transform(load_rgb(path, min_size=self.bundle.preprocessing.resize_size))
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
                results[-1]["error"] = f"cannot read image: {e}"
                continue
            pending.append((len(results) - 1, tensor))
            if len(pending) >= batch_size:
                flush()
        flush()
        return results


class _Files(torch.utils.data.Dataset):
    """Image files -> (index, tensor or None, error or None); unreadable files are reported, not skipped over."""

    def __init__(self, paths: list[str], transform: Any, min_size: int) -> None:
        self.paths, self.transform, self.min_size = paths, transform, min_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return index, self.transform(load_rgb(self.paths[index], min_size=self.min_size)), None
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
            return index, None, f"cannot read image: {e}"


def _collate(items: list) -> tuple[list[int], list[torch.Tensor], dict[int, str]]:
    good = [(i, t) for i, t, e in items if e is None]
    return [i for i, _ in good], [t for _, t in good], {i: e for i, _, e in items if e is not None}


def predict(bundle: str | os.PathLike[str], images: Sequence[str | os.PathLike[str]],
            top_k: int = 3) -> list[dict[str, Any]]:
    """Classifies image files and folders with a trained bundle; see `Predictor.predict`.

    Example:
        >>> predict("runs/x", ["new_photos/"], top_k=2)  # doctest: +SKIP
    """
    return Predictor(bundle).predict(expand_image_paths(images), top_k=top_k)
