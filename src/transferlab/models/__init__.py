"""Models: the data-only registry (`catalog.CATALOG`), weight sources, the course's CNN, Hugging Face and Keras
facades, and the base + new head classifier. Names load lazily: `models.catalog` needs no torch."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ModelInfo": ".catalog", "CATALOG": ".catalog", "create_model": "._registry", "get_model_info": "._registry",
    "list_models": "._registry", "register": "._registry", "HeadConfig": ".transfer", "TransferNet": ".transfer",
    "build_classifier": ".transfer", "summarize_layers": ".transfer", "WeightsUnavailableError": "..errors",
})
