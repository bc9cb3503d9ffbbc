"""Keras Applications, in PyTorch: `from transferlab.applications import ResNet50` as `from keras.applications
import ResNet50`, so course notebooks port line by line (docs/keras.md).

    from transferlab.applications import ResNet50
    from transferlab.applications.resnet50 import preprocess_input, decode_predictions
    base_model = ResNet50(include_top=False, weights="imagenet", input_shape=(240, 240, 3), pooling="avg")
    base_model.trainable = False
    for layer in base_model.layers[143:]:
        layer.trainable = True

Every family of the course's catalog has a function with Keras' name and arguments; with or without the top it
returns a `KerasModel` (`applications.model`): Keras' `trainable`, `layers`, `get_layer`, `trainable_weights` /
`non_trainable_weights` (BatchNormalization's moving statistics count as non-trainable weights, as in Keras),
`count_params()`, `summary()` (Keras' names and output shapes), `output_shape` and `predict`. Keras' modules
(`transferlab.applications.resnet50`, `.densenet`, ...) hold their constructors, their family's
`preprocess_input` and `decode_predictions`. Keras' own counts for each family (tools/keras_tables.py, from Keras
3) are in `models/keras_tables.json`; `summary()` says in one line where the PyTorch architecture differs.

This is a face of the library, like the command line: it sits above inference (its `predict` decodes and
preprocesses as `transferlab predict` does).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SettingError
from ..models import create_model
from ..models.catalog import CATALOG
from .model import KerasBase, KerasLayer, KerasModel, normalise

__all__ = ["KerasModel", "KerasBase", "KerasLayer", "application", "preprocess_input", "decode_predictions"]


def application(name: str, include_top: bool = True, weights: str | os.PathLike[str] | None = "imagenet",
                input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                classes: int = 1000) -> nn.Module:
    """Keras Applications' constructor for catalog model `name`.

    Args:
        name: Catalog name or Keras spelling (`resnet50`, `ResNet50`).
        include_top: Keep the classifier (True) or return the feature extractor (False).
        weights: 'imagenet', None (random initialisation) or the path of a weights file.
        input_shape: (height, width, 3), Keras' channels-last spelling; the model's default size when None.
        pooling: Without the top: None (feature map), 'avg' or 'max'.
        classes: Outputs of the top; must be 1000 with ImageNet weights, as in Keras.

    Raises:
        ValueError: Keras' own argument rules (with what to pass instead).
    """
    if weights is not None and str(weights) != "imagenet" and not os.path.exists(weights):
        raise SettingError(f"The `weights` argument should be 'imagenet', None or the path to a weights file; got "
                         f"{weights!r} (no such file).")
    if include_top and str(weights) == "imagenet" and classes != 1000:
        raise SettingError(f"With weights='imagenet' and include_top=True, classes must be 1000; got {classes}. Use "
                         "include_top=False and add your own head (or transferlab.models.build_classifier).")
    if input_shape is not None and (len(input_shape) != 3 or input_shape[2] != 3 or input_shape[0] != input_shape[1]):
        raise SettingError(f"input_shape must be (size, size, 3), square RGB in Keras' channels-last order; got "
                         f"{input_shape}.")
    size = int(input_shape[0]) if input_shape else None
    model = create_model(name, num_classes=classes if include_top and classes != 1000 else None,
                         weights="none" if weights is None else weights, image_size=size)
    if size is None:
        size = int(model.pretrained_cfg["input_size"][-1])
    entry = next((e for e in CATALOG if e.name == name or e.keras == name), None)
    keras = entry.keras if entry and entry.keras else None
    return KerasModel(model, None if include_top else pooling, (size, size, 3), keras_name=keras,
                      include_top=include_top, name=keras or _KERAS_EXTRA.get(entry.name if entry else name, name))


def preprocess_input(x: Any, model: str | None = None) -> torch.Tensor:
    """Keras' `preprocess_input` for `model`: images in 0..255, channels last ([H, W, 3] or [N, H, W, 3], numpy or
    tensor, as Keras takes them), to the model's input: float32 [N, 3, H, W] scaled to [0, 1] and normalised with
    the mean and std of *this model's* pretrained weights (its timm config; Keras' own per-family modes, such as
    ResNet's BGR 'caffe' mode, belong to Keras' weights: docs/keras.md lists both). No resizing, as in Keras.

    As in Keras, the preprocessing belongs to a family: `ResNet50.preprocess_input(x)`,
    `from transferlab.applications.resnet50 import preprocess_input`, or `preprocess_input(x, model="resnet50")`.

    Example:
        >>> from transferlab.applications import EfficientNetLite0
        >>> EfficientNetLite0.preprocess_input(np.full((1, 2, 2, 3), 255.0))[0, :, 0, 0]
        tensor([1., 1., 1.])
    """
    if model is None:
        raise SettingError("preprocess_input normalises with a model's own statistics, which differ by family: use "
                           "the family's, e.g. `ResNet50.preprocess_input(x)` or `from transferlab.applications."
                           "resnet50 import preprocess_input` (as in Keras), or pass model='resnet50'.")
    with torch.device("meta"):
        cfg = create_model(model, weights="none").pretrained_cfg
    return normalise(torch.as_tensor(np.asarray(x)), cfg)


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Keras' `decode_predictions`: per image, the `top` ImageNet classes as (WordNet id, name, probability), the
    names spelt as Keras spells them (`Egyptian_cat`; `transferlab classify` writes them with spaces).

    Example:
        >>> p = np.zeros((1, 1000)); p[0, 285] = 0.9
        >>> decode_predictions(p, top=1)
        [[('n02124075', 'Egyptian_cat', 0.9)]]
    """
    from ..inference.classify import decode_predictions as decode

    return [[(wnid, name.replace(" ", "_"), p) for wnid, name, p in row] for row in decode(preds, top=top)]


def _make(entry_name: str, keras_name: str) -> Callable[..., nn.Module]:
    def constructor(include_top: bool = True, weights: str | os.PathLike[str] | None = "imagenet",
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                    classes: int = 1000) -> nn.Module:
        return application(entry_name, include_top, weights, input_shape, pooling, classes)

    constructor.__name__ = constructor.__qualname__ = keras_name
    constructor.preprocess_input = functools.partial(preprocess_input, model=entry_name)  # type: ignore[attr-defined]
    constructor.__doc__ = (f"Keras' `{keras_name}` as transferlab model {entry_name!r} (see `application` for the "
                           "arguments).")
    return constructor


_KERAS_EXTRA = {"efficientnet_lite0": "EfficientNetLite0", "efficientnet_lite1": "EfficientNetLite1",
                "efficientnet_lite2": "EfficientNetLite2", "alexnet": "AlexNet", "googlenet": "GoogLeNet",
                "lenet5": "LeNet5"}
for _entry in CATALOG:
    _keras = _entry.keras or _KERAS_EXTRA.get(_entry.name)
    if _keras and _keras.isidentifier():
        globals()[_keras] = _make(_entry.name, _keras)
        __all__.append(_keras)
ViT_B16 = _make("vit_b16", "ViT_B16")
__all__.append("ViT_B16")


# Keras' modules under keras.applications and the constructors each holds: `from
# transferlab.applications.resnet50 import ResNet50, preprocess_input, decode_predictions` works as in Keras, each
# module's preprocess_input being its family's
KERAS_MODULES = {
    "vgg16": ("VGG16",), "vgg19": ("VGG19",), "resnet50": ("ResNet50",),
    "resnet": ("ResNet50", "ResNet101", "ResNet152"), "resnet_v2": ("ResNet50V2", "ResNet101V2", "ResNet152V2"),
    "inception_v3": ("InceptionV3",), "inception_resnet_v2": ("InceptionResNetV2",), "xception": ("Xception",),
    "densenet": ("DenseNet121", "DenseNet169", "DenseNet201"), "mobilenet": ("MobileNet",),
    "mobilenet_v2": ("MobileNetV2",), "mobilenet_v3": ("MobileNetV3Large", "MobileNetV3Small"),
    "nasnet": ("NASNetLarge",), "efficientnet": tuple(f"EfficientNetB{i}" for i in range(8)),
    "convnext": ("ConvNeXtTiny",), "efficientnet_lite": ("EfficientNetLite0", "EfficientNetLite1", "EfficientNetLite2"),
}


def _submodules() -> None:
    import sys
    import types

    for module_name, constructors in KERAS_MODULES.items():
        present = [c for c in constructors if c in globals()]
        if not present:
            continue
        module = types.ModuleType(f"{__name__}.{module_name}",
                                  f"Keras' `keras.applications.{module_name}`: {', '.join(present)}, their "
                                  "preprocess_input and decode_predictions.")
        for constructor in present:
            setattr(module, constructor, globals()[constructor])
        module.preprocess_input = globals()[present[0]].preprocess_input  # type: ignore[attr-defined]
        module.decode_predictions = decode_predictions  # type: ignore[attr-defined]
        module.__all__ = [*present, "preprocess_input", "decode_predictions"]  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module


_submodules()  # transferlab.applications.resnet50, .densenet, ...: Keras' module names
for _name in KERAS_MODULES:  # also as attributes: `applications.resnet50.preprocess_input`
    import sys as _sys

    if f"{__name__}.{_name}" in _sys.modules:
        globals()[_name] = _sys.modules[f"{__name__}.{_name}"]
