"""Models: a registry over timm, weight sources and the course's CNN."""

from ._registry import ModelInfo, create_model, get_model_info, list_models, register
from .weights import WeightsUnavailableError

__all__ = ["ModelInfo", "create_model", "get_model_info", "list_models", "register", "WeightsUnavailableError"]
