"""Classifying photos into the 1000 ImageNet classes (the course's Exercise 2), like Keras'
`model.predict` + `decode_predictions`.

Labels come from timm's ImageNet metadata (WordNet ids and class names), the preprocessing from the model's
own pretrained config: it decides accuracy (the bundled Lite0 needs mean = std = 0.5, not ImageNet's
statistics).

Example:
    >>> results = classify(["elephant.jpg"], top=3)  # doctest: +SKIP
    >>> results[0]["top"][0]  # doctest: +SKIP
    {'wnid': 'n02504458', 'label': 'African elephant', 'probability': 0.91}
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.sources import list_images
from ..data.transforms import preprocessing_from_model
from ..errors import SettingError
from ..runs.bundle import Bundle
from .loading import load_predictor
from .portable import BasePredictor, top_k
from .predictor import Predictor

__all__ = ["imagenet_labels", "imagenet_predictor", "classify", "decode_predictions"]


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[list[str], list[str]]:
    """(WordNet ids, class names) of the 1000 ImageNet-1k classes, in the models' output order."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    ids = [info.index_to_label_name(i) for i in range(1000)]
    names = [info.index_to_description(i) for i in range(1000)]
    return ids, names


def imagenet_predictor(model: str = "efficientnet_lite0", weights: str | os.PathLike[str] | None = None,
                       device: str = "cpu", engine: str = "auto") -> BasePredictor:
    """A `Predictor` for an ImageNet classifier of the catalog (its 1000-class head kept), or a Hugging Face
    classifier with its own labels.

    Raises:
        ValueError: The model does not output the 1000 ImageNet classes.
    """
    from ..models import create_model, get_model_info
    from .onnx_reader import is_onnx_export

    if is_onnx_export(model):  # an exported ONNX classifier: its own labels and preprocessing
        return load_predictor(model, engine=engine, device=device)
    info = get_model_info(model)
    if (weights is not None and str(weights).lower() == "none") or (weights is None and not info.has_pretrained):
        raise SettingError(f"{info.name!r} without pretrained weights has random weights: its ImageNet answers would "
                           "be noise. Classify with a pretrained model: --model efficientnet_lite0 (weights bundled, "
                           "offline), or --weights FILE with this model's ImageNet weights.")
    net = create_model(info.name, num_classes=None, weights=weights)
    outputs = getattr(net, "num_classes", None)
    own_labels = getattr(net, "labels", None)  # Hugging Face models carry their own id2label
    if own_labels:
        bundle = Bundle(net.eval(), list(own_labels), preprocessing_from_model(net), {"model": info.name})
        return Predictor(bundle, device=device, engine=engine)
    if outputs != 1000:
        raise SettingError(f"Model {model!r} has {outputs} outputs, not the 1000 ImageNet classes; `classify` needs an "
                         "ImageNet classifier. For a model you trained, use `transferlab predict RUN IMAGES`.")
    ids, names = imagenet_labels()
    bundle = Bundle(net.eval(), names, preprocessing_from_model(net),
                    {"model": info.name, "label_ids": ids, "task": "imagenet-1k"})
    return Predictor(bundle, device=device, engine=engine)


def classify(images: Sequence[str | os.PathLike[str]], model: str = "efficientnet_lite0", top: int = 3,
             weights: str | os.PathLike[str] | None = None, engine: str = "auto") -> list[dict[str, Any]]:
    """Classifies image files and folders into the 1000 ImageNet classes.

    Args:
        images: Image files and/or folders.
        model: Catalog name, Keras spelling or timm name; works offline with the bundled Lite0.
        top: Labels per image (Keras' `decode_predictions(preds, top=3)`).
        weights: 'imagenet' (default), or a weights file.
        engine: 'auto' (fastest correct path) or 'fp32'.

    Returns:
        Per image: {"path", "top": [{"wnid", "label", "probability"}, ...]} or {"path", "error"}.
    """
    predictor = imagenet_predictor(model, weights, engine=engine)
    return predictor.predict(list_images(images), top_k=top)


def decode_predictions(preds: np.ndarray | torch.Tensor, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Keras' `decode_predictions`: [N, 1000] probabilities -> per row, `top` (wnid, class name, probability).

    Example:
        >>> p = np.zeros((1, 1000)); p[0, 285] = 0.9
        >>> decode_predictions(p, top=1)
        [[('n02124075', 'Egyptian cat', 0.9)]]
    """
    array = preds.detach().float().cpu().numpy() if isinstance(preds, torch.Tensor) else np.asarray(preds)
    if array.ndim != 2 or array.shape[1] != 1000:
        raise SettingError(f"decode_predictions expects a batch of 1000-class predictions, shape (N, 1000); got "
                         f"{array.shape}.")
    ids, names = imagenet_labels()
    return [[(t["wnid"], t["label"], t["probability"]) for t in top_k(row, names, top, ids, decimals=None)]
            for row in array]
