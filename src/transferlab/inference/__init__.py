"""Inference: one `Predictor` interface with a PyTorch and an ONNX Runtime engine, one decode + preprocess path,
top-k decoding, and ImageNet classification. Never imports training (or Lightning).
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Predictor": ".predictor", "predict": ".loading", "load_predictor": ".loading",
    "expand_image_paths": ".predictor", "OnnxPredictor": ".onnx_reader", "classify": ".classify",
    "decode_predictions": ".classify", "imagenet_predictor": ".classify",
})
