"""One helper for parameter errors, in scikit-learn's words: what was received, what is possible, the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(value: str, choices: Iterable[str], n: int = 3) -> str:
    """Returns " Did you mean 'x'?" for the closest choices, or an empty string.

    Example:
        >>> did_you_mean("frozen", ["freeze", "full"])
        " Did you mean 'freeze'?"
    """
    close = difflib.get_close_matches(str(value), list(choices), n=n, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def check_choice(name: str, value: str, choices: Iterable[str], where: str = "transferlab") -> str:
    """Returns `value` if it is one of `choices`, else raises a ValueError that says what to pass.

    Example:
        >>> check_choice("monitor", "val_accuracy", ["val_accuracy", "val_loss"], where="train")
        'val_accuracy'
    """
    choices = list(choices)
    if value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise ValueError(
        f"The {name!r} parameter of {where} must be one of {listed}. Got {value!r} instead."
        + did_you_mean(value, choices)
    )
