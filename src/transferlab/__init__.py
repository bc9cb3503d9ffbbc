"""transferlab: turn a folder of images into an accurate image classifier by transfer learning.

The root re-exports a handful of names lazily (PEP 562): `import transferlab` loads neither torch nor
Lightning; each name loads its own layer the first time it is used.

Example:
    >>> import transferlab
    >>> result = transferlab.train("cats_and_dogs_filtered", strategy="two-phase", epochs=10)  # doctest: +SKIP
    >>> result.predict("my_cat.jpg")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> the module that owns it
_EXPORTS = {
    "TrainConfig": "transferlab.training.config",
    "TrainResult": "transferlab.training.result",
    "fit": "transferlab.training.fit",
    "train": "transferlab.training.api",
    "load_run": "transferlab.training.api",
    "evaluate": "transferlab.evaluation.metrics",
    "augment_preview": "transferlab.evaluation.grids",
    "classify": "transferlab.inference.classify",
    "resume": "transferlab.training.fit",
    "Predictor": "transferlab.inference.predictor",
    "predict": "transferlab.inference.loading",
    "load_predictor": "transferlab.inference.loading",
    "create_model": "transferlab.models",
    "list_models": "transferlab.models",
    "TransferlabError": "transferlab.errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .errors import TransferlabError  # noqa: F401
    from .evaluation.grids import augment_preview  # noqa: F401
    from .evaluation.metrics import evaluate  # noqa: F401
    from .inference.classify import classify  # noqa: F401
    from .inference.loading import load_predictor, predict  # noqa: F401
    from .inference.predictor import Predictor  # noqa: F401
    from .models import create_model, list_models  # noqa: F401
    from .training.api import load_run, train  # noqa: F401
    from .training.config import TrainConfig  # noqa: F401
    from .training.fit import fit, resume  # noqa: F401
    from .training.result import TrainResult  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'transferlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
