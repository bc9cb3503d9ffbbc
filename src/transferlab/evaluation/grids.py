"""Pictures of images: grids of tensors, of predictions, and the augmentation preview (the course's
`plt.subplot(3, 3, i + 1)` figures)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt

from ..errors import SettingError
from .displays import _finish
from .fonts import needs_hangul

__all__ = ["image_grid", "prediction_grid", "augment_preview"]


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
    needs_hangul([*titles, title or ""])
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
    from ..data.images import load_rgb

    shown = [r for r in results if r.get("top")]
    needs_hangul([r["top"][0]["label"] for r in shown] + [title or ""])
    if not shown:
        raise SettingError("No readable images to draw: every image failed to load.")
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


def augment_preview(source: str | os.PathLike[str], augment: str | dict[str, Any] = "course",
                    model: str = "efficientnet_lite0", image_size: int | None = None, count: int = 9, seed: int = 0,
                    path: str | os.PathLike[str] | None = None) -> plt.Figure:
    """A grid of augmented images, as training would see them (the course's ImageDataGenerator preview).

    Args:
        source: One image (drawn `count` times, each differently augmented), or a data folder (`count` training
            images with their labels).
        augment: A preset ('none', 'course', 'flip', 'light', 'strong') or Keras ImageDataGenerator parameters,
            e.g. {"rotation_range": 40, "zoom_range": 0.2, "horizontal_flip": True}, optionally with 'preset'.
        model: The model whose input size and normalisation to use.
        image_size: Input size; default the model's own.
        count: Images in the grid.
        seed: Random seed (the same seed draws the same grid).
        path: PNG file to write as well (atomically).

    Example:
        >>> fig = augment_preview("cat.jpg", {"rotation_range": 40, "horizontal_flip": True})  # doctest: +SKIP
    """
    import random
    from pathlib import Path

    import torch

    from ..data.augment import describe_augment
    from ..data.images import load_rgb
    from ..data.sources import load_image_folder
    from ..data.transforms import preprocessing_from_model, train_transform
    from ..errors import MissingFileError
    from ..models import create_model

    source = Path(source)
    if not source.exists():
        raise MissingFileError(f"'{source}' does not exist: give augment_preview an image file or a data folder.")
    used = describe_augment(augment)
    pre = preprocessing_from_model(create_model(model, weights="none"), image_size)
    transform = train_transform(pre, augment)
    torch.manual_seed(seed)
    if source.is_dir():
        data = load_image_folder(source)
        picks = random.Random(seed).sample(data.train, min(count, len(data.train)))
        images = [transform(load_rgb(s.path)) for s in picks]
        titles = [data.classes[s.label] for s in picks]
        title = f"Training images: {used}"
    else:
        image = load_rgb(source)
        images = [transform(image) for _ in range(count)]
        titles = [f"#{i + 1}" for i in range(count)]
        title = f"{source.name}: {used}"
    fig = image_grid(images, titles, path, pre.mean, pre.std, title=title)
    plt.close(fig)  # returned, not left open: a notebook shows it once (as the cell's value)
    return fig


