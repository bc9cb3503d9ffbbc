"""The course's catalog of pretrained families, mapped to timm (and torchvision) models.

Each entry has the name users type, the Keras Applications spelling the course uses (`ResNet50`,
`EfficientNetB0`), the architecture that builds it, and the course's reference accuracy where the course's
table gives one. Sizes (parameters, depth, MB) are computed from the architecture itself, on PyTorch's
meta device (no memory, no weights), so they are exact for the model transferlab builds.

Example:
    >>> resolve_name("ResNet50")
    'resnet50'
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CatalogEntry", "CATALOG", "KERAS_NAMES", "resolve_name", "catalog_rows", "weights_availability"]


@dataclass(frozen=True)
class CatalogEntry:
    """One family member of the course's catalog.

    Attributes:
        name: The name users type (`resnet50`).
        keras: The Keras Applications spelling (`ResNet50`), or '' for models Keras does not have.
        architecture: timm architecture (`resnet50`), or `tv:NAME` for a torchvision model.
        family: Group shown in the table (`ResNet`).
        keras_top1: Top-1 ImageNet accuracy in the course's Keras table (Keras' own weights), or None.
        keras_top5: Top-5 accuracy in the course's Keras table, or None.
        note: Shown when the entry needs explaining.
    """

    name: str
    keras: str
    architecture: str
    family: str
    keras_top1: float | None = None
    keras_top5: float | None = None
    note: str = ""


_e = CatalogEntry  # short rows below: name, keras, architecture, family, top-1, top-5


# Top-1/top-5 figures: the course's "Comparison of Pre-Trained Models" table (Keras Applications).
CATALOG: list[CatalogEntry] = [
    _e("lenet5", "", "lenet5", "LeNet-5 (1998)", note="ours, trained from scratch (32x32)"),
    _e("alexnet", "", "tv:alexnet", "AlexNet (2012)"),
    _e("vgg16", "VGG16", "vgg16", "VGG (2014)", 0.713, 0.901),
    _e("vgg19", "VGG19", "vgg19", "VGG (2014)", 0.713, 0.900),
    _e("googlenet", "", "tv:googlenet", "GoogLeNet (2014)"),
    _e("inception_v3", "InceptionV3", "inception_v3", "Inception (2015)", 0.779, 0.937),
    _e("inception_resnet_v2", "InceptionResNetV2", "inception_resnet_v2", "Inception (2015)", 0.803, 0.953),
    _e("resnet50", "ResNet50", "resnet50", "ResNet (2015)", 0.749, 0.921),
    _e("resnet101", "ResNet101", "resnet101", "ResNet (2015)", 0.764, 0.928),
    _e("resnet152", "ResNet152", "resnet152", "ResNet (2015)", 0.766, 0.931),
    _e("resnet50v2", "ResNet50V2", "resnetv2_50", "ResNet (2015)", 0.760, 0.930),
    _e("resnet101v2", "ResNet101V2", "resnetv2_101", "ResNet (2015)", 0.772, 0.938),
    _e("resnet152v2", "ResNet152V2", "resnetv2_152", "ResNet (2015)", 0.780, 0.942,
       note="timm has the architecture but no ImageNet weights"),
    _e("xception", "Xception", "legacy_xception", "Xception (2016)", 0.790, 0.945),
    _e("densenet121", "DenseNet121", "densenet121", "DenseNet (2016)", 0.750, 0.923),
    _e("densenet169", "DenseNet169", "densenet169", "DenseNet (2016)", 0.762, 0.932),
    _e("densenet201", "DenseNet201", "densenet201", "DenseNet (2016)", 0.773, 0.936),
    _e("mobilenet", "MobileNet", "mobilenetv1_100", "MobileNet (2017)", 0.704, 0.895),
    _e("mobilenet_v2", "MobileNetV2", "mobilenetv2_100", "MobileNet (2017)", 0.713, 0.901),
    _e("mobilenet_v3_large", "MobileNetV3Large", "mobilenetv3_large_100", "MobileNet (2017)"),
    _e("mobilenet_v3_small", "MobileNetV3Small", "mobilenetv3_small_100", "MobileNet (2017)"),
    _e("nasnet_large", "NASNetLarge", "nasnetalarge", "NASNet (2017)", 0.825, 0.960),
    *[_e(f"efficientnet_b{i}", f"EfficientNetB{i}", f"tf_efficientnet_b{i}", "EfficientNet (2019)", t1, t5)
      for i, (t1, t5) in enumerate([(0.771, 0.933), (0.791, 0.944), (0.801, 0.949), (0.816, 0.957),
                                    (0.829, 0.964), (0.836, 0.967), (0.840, 0.968), (0.843, 0.970)])],
    _e("efficientnet_lite0", "", "tf_efficientnet_lite0", "EfficientNet-Lite (2020)", note="weights bundled"),
    _e("efficientnet_lite1", "", "tf_efficientnet_lite1", "EfficientNet-Lite (2020)",
       note="weights bundled with transferlab[lite]"),
    _e("efficientnet_lite2", "", "tf_efficientnet_lite2", "EfficientNet-Lite (2020)",
       note="weights bundled with transferlab[lite]"),
    _e("convnext_tiny", "ConvNeXtTiny", "convnext_tiny", "ConvNeXt (2022)"),
    _e("vit_b16", "ViT-B16", "vit_base_patch16_224", "ViT (2020)"),
]

# Keras spellings with no PyTorch port: the message says what to use instead.
UNAVAILABLE: dict[str, str] = {
    "NASNetMobile": "NASNetMobile has no PyTorch port in timm or torchvision. Use 'nasnet_large' (NASNetLarge), "
                    "or a mobile model of the same size: 'mobilenet_v2', 'mobilenet_v3_large' or "
                    "'efficientnet_lite0' (bundled).",
}

KERAS_NAMES: dict[str, str] = {e.keras: e.name for e in CATALOG if e.keras}


def resolve_name(name: str) -> str:
    """Maps a Keras spelling (`ResNet50`, `EfficientNetB0`, also lower-case `resnet50v2`) to the catalog name;
    other names are returned unchanged.

    Raises:
        ValueError: A Keras model with no PyTorch port (NASNetMobile); the message names alternatives.
    """
    for keras, message in UNAVAILABLE.items():
        if name.lower() == keras.lower():
            raise ValueError(message)
    if name in KERAS_NAMES:
        return KERAS_NAMES[name]
    lowered = {k.lower(): v for k, v in KERAS_NAMES.items()}
    return lowered.get(name.lower(), name)


def _build_meta(entry: CatalogEntry) -> nn.Module:
    from ._registry import create_model

    with torch.device("meta"):
        return create_model(entry.name, weights="none")


def _depth(model: nn.Module) -> int:
    """Layers with weights (convolutions and dense layers), the way the course counts VGG16's 16."""
    return sum(1 for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))


def _hf_cached(hf_hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(hf_hub_id, filename), str):
            return True
    return False


def weights_availability(entry: CatalogEntry, pretrained_cfg: dict[str, Any] | None = None) -> str:
    """'bundled' (works offline), 'cached' (downloaded before), 'download' (needs internet once) or 'none'.

    timm's hub cache follows HF_HOME / HF_HUB_CACHE; torch.hub's follows TORCH_HOME.
    """
    from .weights import BUNDLED

    if entry.name in BUNDLED:
        module = BUNDLED[entry.name][0]
        if importlib.util.find_spec(module) is not None:
            return "bundled"
    if entry.architecture.startswith("tv:"):
        url = (pretrained_cfg or {}).get("url", "")
        return "cached" if url and (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)).is_file() \
            else "download"
    import timm

    tags = timm.list_pretrained(entry.architecture + ".*") or timm.list_pretrained(entry.architecture)
    if not tags:
        return "none"
    cfg = timm.models.get_pretrained_cfg(tags[0])
    if cfg is not None and cfg.hf_hub_id and _hf_cached(cfg.hf_hub_id):
        return "cached"
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url) if cfg and cfg.url else None
    if hub_file is not None and hub_file.is_file():
        return "cached"
    return "download"


def catalog_rows(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per catalog model: sizes computed from the architecture, accuracy from the course's table.

    Example:
        >>> row = catalog_rows(["vgg16"])[0]
        >>> row["parameters"], row["depth"]
        (138357544, 16)
    """
    entries = [e for e in CATALOG if names is None or e.name in names]
    rows = []
    for e in entries:
        model = _build_meta(e)
        params = sum(p.numel() for p in model.parameters())
        cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
        rows.append({
            "name": e.name, "keras": e.keras, "family": e.family,
            "source": "torchvision" if e.architecture.startswith("tv:") else "transferlab"
            if e.architecture in ("lenet5",) else "timm",
            "source_name": e.architecture.removeprefix("tv:"), "parameters": params, "depth": _depth(model),
            "size_mb": round(params * 4 / 2**20, 1), "input_size": int(cfg.get("input_size", (3, 224, 224))[-1]),
            "top1": e.keras_top1, "top5": e.keras_top5,
            "accuracy_source": "course table (Keras weights)" if e.keras_top1 is not None else "",
            "weights": weights_availability(e, cfg) if e.architecture != "lenet5" else "none",
            "note": e.note,
        })
        if e.architecture.startswith("tv:"):
            metrics = _torchvision_metrics(e.architecture[3:])
            rows[-1].update(top1=metrics[0], top5=metrics[1], accuracy_source="torchvision weights metadata")
    return rows


def _torchvision_metrics(name: str) -> tuple[float, float]:
    import torchvision.models as tvm

    from .classic import TORCHVISION_MODELS

    meta = getattr(tvm, TORCHVISION_MODELS[name][1]).DEFAULT.meta["_metrics"]["ImageNet-1K"]
    return round(meta["acc@1"] / 100, 4), round(meta["acc@5"] / 100, 4)
