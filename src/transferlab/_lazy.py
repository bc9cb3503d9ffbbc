"""Lazy re-exports (PEP 562) for package roots: a name's module is imported the first time it is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package` whose public `exports` map each name to its owning submodule.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"Predictor": ".predictor"})  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
            globals_of_package = importlib.import_module(package).__dict__
            globals_of_package[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*importlib.import_module(package).__dict__, *exports})

    return __getattr__, __dir__
