"""Deployment: exporting a trained bundle to ONNX (optionally int8) or TorchScript, with a parity check."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"export_model": ".export", "FORMATS": ".export"})
