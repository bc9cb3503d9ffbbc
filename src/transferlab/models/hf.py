"""Hugging Face transformers image classifiers with timm's surface (`--model hf:ORG/NAME` or `hf:/path`).

`HFNet` wraps an `AutoModelForImageClassification`: its own classifier becomes the replaceable `fc`, the
rest is the feature extractor, and the preprocessing comes from the model's own image processor (mean,
std, size, crop, resampling), so training, fine-tuning strategies, evaluation, prediction and `classify`
work as with any timm model. Needs the optional extra `pip install transferlab[hf]`.

Example:
    >>> model = hf_model("hf:/models/my-vit", pretrained=True)  # doctest: +SKIP
    >>> model.pretrained_cfg["mean"]  # doctest: +SKIP
    (0.5, 0.5, 0.5)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SettingError, WeightsUnavailableError
from ._surface import ClassifierSurface, replace_submodule

__all__ = ["HFNet", "hf_model", "is_hf_name", "save_hf_classifier"]

PREFIX = "hf:"
_RESAMPLE = {0: "nearest", 1: "bicubic", 2: "bilinear", 3: "bicubic", 4: "bilinear", 5: "bicubic"}  # PIL codes


def is_hf_name(name: str) -> bool:
    return name.startswith(PREFIX)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise SettingError("Hugging Face models need the transformers package: `pip install 'transferlab[hf]'` (in a "
                           "notebook: `%pip install 'transferlab[hf]'`, then restart the kernel).") from e
    return transformers


def _last_linear(module: nn.Module) -> tuple[str, nn.Linear]:
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise SettingError(f"Cannot find the classifier's Linear layer in {type(module).__name__}.")
    return linears[-1]


class HFNet(ClassifierSurface):
    """A transformers image classifier with `forward_features`, `reset_classifier`, `num_features`,
    `pretrained_cfg` and `group_matcher`."""

    def __init__(self, name: str, model: nn.Module, processor: Any | None) -> None:
        super().__init__()
        self.hf_name = name
        self.model = model
        head = getattr(model, "classifier", None)
        if head is None:
            raise SettingError(f"{name}: {type(model).__name__} has no `classifier`; transferlab supports the "
                             "AutoModelForImageClassification models whose head is called `classifier`.")
        path, linear = _last_linear(head) if not isinstance(head, nn.Linear) else ("", head)
        self.num_features = self.head_hidden_size = linear.in_features
        self.num_classes = linear.out_features
        self.classifier_path = path  # where the Linear sat inside `classifier` ("" when it is the classifier)
        if path:  # e.g. ResNet's Sequential(Flatten, Linear): keep the rest, take the Linear out
            replace_submodule(head, path, nn.Identity())
        else:
            model.classifier = nn.Identity()
        self.fc = linear
        id2label = getattr(model.config, "id2label", None) or {}
        self.labels = [str(id2label.get(i, id2label.get(str(i), i))) for i in range(self.num_classes)]
        self.pretrained_cfg = _pretrained_cfg(name, processor, model.config, self.num_classes)
        self.default_cfg = self.pretrained_cfg

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits  # the classifier is an Identity: these are the pooled features

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Stages/layers of the encoder as blocks (for `unfreeze-last=N`); embeddings are the stem."""
        return {"stem": r"^model\.\w+\.(?:embeddings|embedder)", "blocks": [
            (r"^model\.\w+\.encoder\.(?:layer|layers|stages)\.(\d+)\.", None),
            (r"^model\.\w+\.(?:layers|stages|layer)\.(\d+)\.", None),
            (r"^model\.\w+\.(?:layernorm|norm|pooler)", (99999,)),
        ]}


def _pretrained_cfg(name: str, processor: Any | None, config: Any, num_classes: int) -> dict[str, Any]:
    """timm-style preprocessing settings read from the model's own image processor."""
    size = getattr(config, "image_size", 224)
    mean, std, interpolation, crop_pct = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bilinear", 1.0
    crop_mode = "squash"
    if processor is not None:
        mean = tuple(float(v) for v in (getattr(processor, "image_mean", None) or mean))
        std = tuple(float(v) for v in (getattr(processor, "image_std", None) or std))
        interpolation = _RESAMPLE.get(int(getattr(processor, "resample", 2) or 2), "bilinear")
        sizes = getattr(processor, "size", None) or {}
        get = sizes.get if isinstance(sizes, dict) else lambda k, d=None: getattr(sizes, k, d)
        crop = getattr(processor, "crop_size", None)
        crop_get = crop.get if isinstance(crop, dict) else (lambda k, d=None: getattr(crop, k, d))
        if get("height"):  # ViT-style: resize both sides (squash)
            size, crop_mode = int(get("height")), "squash"
        elif get("shortest_edge"):
            edge = int(get("shortest_edge"))
            if crop is not None and crop_get("height") and getattr(processor, "do_center_crop", False):
                size, crop_pct, crop_mode = int(crop_get("height")), int(crop_get("height")) / edge, "center"
            elif getattr(processor, "crop_pct", None) and edge < 384:  # ConvNeXt: resize edge/crop_pct, crop edge
                size, crop_pct, crop_mode = edge, float(processor.crop_pct), "center"
            else:
                size, crop_mode = edge, "squash"
    return {"architecture": name, "input_size": (3, int(size), int(size)), "fixed_input_size": True,
            "interpolation": interpolation, "crop_pct": min(1.0, crop_pct), "crop_mode": crop_mode, "mean": mean,
            "std": std, "num_classes": num_classes, "classifier": "fc", "source": "transformers"}


def hf_model(name: str, pretrained: bool = True) -> HFNet:
    """Loads `hf:ORG/NAME` (the Hugging Face hub, cached under HF_HOME) or `hf:/local/folder` (from
    `save_pretrained`). Without `pretrained` the architecture is built from its config with random weights.

    Raises:
        WeightsUnavailableError: Offline and not cached; the message says what to do.
    """
    transformers = _transformers()
    source = name[len(PREFIX):]
    if not source:
        raise SettingError("Give the Hugging Face model after 'hf:', e.g. `--model hf:google/vit-base-patch16-224` "
                           "(Python: `model='hf:google/vit-base-patch16-224'`) or `--model hf:/path/to/saved_model`.")
    try:
        if pretrained:
            model = transformers.AutoModelForImageClassification.from_pretrained(source)
        else:
            config = transformers.AutoConfig.from_pretrained(source)
            model = transformers.AutoModelForImageClassification.from_config(config)
        try:
            processor = transformers.AutoImageProcessor.from_pretrained(source)
        except (OSError, ValueError):
            processor = None
    except OSError as e:
        raise WeightsUnavailableError(
            f"Could not load the Hugging Face model {source!r} ({str(e).splitlines()[0][:200]}). This machine may "
            f"be offline. Either run once with internet access (the files are cached under HF_HOME), or on a "
            f"machine that has it, `AutoModelForImageClassification.from_pretrained({source!r}).save_pretrained"
            f"(FOLDER)` and the same for its AutoImageProcessor, copy FOLDER here and pass `--model hf:FOLDER` (in "
            f"Python: `transferlab.train(DATA, model='hf:FOLDER')`). See docs/huggingface.md."
        ) from e
    return HFNet(name, model.eval(), processor)


def save_hf_classifier(features: HFNet, linear: nn.Linear, labels: list[str], folder: Any) -> bool:
    """Writes a transformers model folder (`save_pretrained`: config.json with id2label, model.safetensors) whose
    classifier is `linear`, the new head trained on `features`; `AutoModelForImageClassification.from_pretrained`
    loads it as any other. The source's image processor is saved beside it when it can be had (returns whether).

    Example:
        >>> save_hf_classifier(net.features, net.head[-1], ["cat", "dog"], "export-hf")  # doctest: +SKIP
    """
    import copy

    transformers = _transformers()
    model = copy.deepcopy(features.model)
    if features.classifier_path:
        replace_submodule(model.classifier, features.classifier_path, copy.deepcopy(linear))
    else:
        model.classifier = copy.deepcopy(linear)
    model.config.num_labels = len(labels)
    model.config.id2label = {i: label for i, label in enumerate(labels)}
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.save_pretrained(str(folder))
    try:
        transformers.AutoImageProcessor.from_pretrained(features.hf_name[len(PREFIX):]).save_pretrained(str(folder))
        return True
    except (OSError, ValueError):
        return False
