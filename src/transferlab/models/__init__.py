"""Models: a registry over timm, weight sources, the course's CNN, and the base + new head classifier."""

from ._registry import ModelInfo, create_model, get_model_info, list_models, register
from .transfer import HeadConfig, TransferNet, build_classifier, summarize_layers
from .weights import WeightsUnavailableError

__all__ = ["HeadConfig", "ModelInfo", "TransferNet", "WeightsUnavailableError", "build_classifier", "create_model",
           "get_model_info", "list_models", "register", "summarize_layers"]
