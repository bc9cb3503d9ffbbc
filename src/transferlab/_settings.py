"""One way to check a settings dataclass, for every one of them (training, augmentation, head, service).

Each field's type hint says what it holds and its `metadata` what is allowed: `ge`, `gt`, `le`, `lt` (numbers, or
every item of a list; a bound may be a function, read when checked, e.g. a multiple of the CPU count), `choices`
(text: one of them, with "did you mean"), `example` (shown in every message). Numbers are finite: nan and inf are
refused everywhere. Text that is unambiguous is converted (YAML gives `lr: 1e-4` as text; a CLI gives '8').
`check_settings` checks every field of an instance and writes the converted values back; `settings_from` builds
an instance from a mapping, refusing unknown keys with the close names; `field_help` reads each field's help from
the class's Google-style "Attributes:" (the CLI generates its options from it).

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Demo:
    ...     \"\"\"Attributes:
    ...         rate: How fast.\"\"\"
    ...     rate: float = field(default=1.0, metadata={"gt": 0, "example": "0.5"})
    >>> check_settings(Demo(rate="2"), "demo").rate
    2.0
    >>> check_settings(Demo(rate="nan"), "demo")
    Traceback (most recent call last):
    ...
    transferlab.errors.SettingError: The 'rate' setting of demo must be a finite number, e.g. `rate: 0.5`; got nan.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from dataclasses import fields
from typing import Any, TypeVar

from .errors import SettingError, check_choice, did_you_mean

__all__ = ["check_settings", "check_value", "settings_from", "field_help"]

T = TypeVar("T")
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list",
               dict: "a mapping", tuple: "a pair of numbers"}
_BOUNDS = (("ge", lambda v, b: v >= b, "at least"), ("gt", lambda v, b: v > b, "more than"),
           ("le", lambda v, b: v <= b, "at most"), ("lt", lambda v, b: v < b, "less than"))
_MAX_DIGITS = 30  # a number written with more digits is a typo or an attack, not a setting


def _options(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return list(typing.get_args(hint))
    return [hint]


def _number_text(value: str) -> str:
    text = value.strip()
    if len(re.sub(r"[^0-9]", "", text)) > _MAX_DIGITS:
        raise ValueError("too many digits")
    return text


def _convert(value: Any, kind: Any) -> Any:
    """`value` as `kind`, where unambiguous ('8' -> 8, '1e-4' -> 1e-4, 2.0 -> 2, 'yes' -> True, 256 -> [256],
    '0.8,1.2' -> (0.8, 1.2)); raises ValueError otherwise (1.7 is no whole number, True is no number)."""
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError
    if isinstance(value, bool):
        raise ValueError  # true/false is neither a number nor a name
    if origin is int:
        if isinstance(value, int):
            if abs(value) >= 10**_MAX_DIGITS:
                raise ValueError
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", _number_text(value)):
            return int(value)
        raise ValueError
    if origin is float:
        if isinstance(value, int) and abs(value) >= 10**_MAX_DIGITS:
            raise ValueError
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            text = _number_text(value)
            if "/" in text:  # Keras' rescale=1/255
                num, den = text.split("/", 1)
                return float(num) / float(den)
            return float(text)  # ValueError for words
        raise ValueError
    if origin is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            return str(value)  # unfreeze_from: 143
        raise ValueError
    if origin in (list, tuple):
        args = [a for a in typing.get_args(kind) if a is not Ellipsis] or [Any]
        items = value if isinstance(value, (list, tuple)) else (
            [v for v in value.split(",") if v.strip()] if isinstance(value, str) else [value])
        converted = [v if args[0] is Any else _convert(v, args[0]) for v in items]
        if origin is tuple:
            if len(typing.get_args(kind)) == 2 and Ellipsis not in typing.get_args(kind) and len(converted) != 2:
                raise ValueError
            return tuple(converted)
        return converted
    if origin is dict:
        if isinstance(value, dict):
            return value
        raise ValueError
    return value


def _words(kind: Any) -> str:
    origin = typing.get_origin(kind) or kind
    if origin is tuple and len(typing.get_args(kind)) == 2:
        return "a pair of numbers 'low,high'"
    return _KIND_WORDS.get(origin, str(kind))


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def check_value(name: str, value: Any, hint: Any, meta: Any, where: str = "transferlab") -> Any:
    """One setting checked against its type hint and its field's metadata; returns the converted value.

    Raises:
        SettingError: Naming the setting, what is allowed and an example.
    """
    example = meta.get("example") or "..."
    of = f" of {where}" if where else ""
    options = _options(hint)
    if value is None:
        if type(None) in options:
            return None
        raise SettingError(f"The {name!r} setting{of} cannot be empty (null); give a value, e.g. `{name}: {example}`.")
    kinds = [o for o in options if o is not type(None)]
    numeric = [k for k in kinds if k in (int, float)]
    if isinstance(value, str) and numeric:  # '1e-4' is a number to the user, not a word
        kinds = numeric + [k for k in kinds if k not in numeric]
    if type(value) in kinds and not isinstance(value, str):  # a number stays its type (Keras: a shift of 1.0 is not 1)
        kinds = [type(value)] + [k for k in kinds if k is not type(value)]
    for kind in kinds:
        try:
            value = _convert(value, kind)
            break
        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
            continue
    else:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        words = " or ".join(_words(k) for k in kinds)
        raise SettingError(f"The {name!r} setting{of} must be {words}, e.g. `{name}: {example}`; got {shown}.")
    if not _finite(value):
        raise SettingError(f"The {name!r} setting{of} must be a finite number, e.g. `{name}: {example}`; got {value}.")
    numbers = value if isinstance(value, (list, tuple)) else [value]
    for number in numbers:
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            for key, test, words in _BOUNDS:
                if key in meta:
                    bound = meta[key]() if callable(meta[key]) else meta[key]
                    if not test(number, bound):
                        raise SettingError(f"The {name!r} setting{of} must be {words} {bound}, e.g. "
                                           f"`{name}: {example}`; got {number}.")
    if "choices" in meta:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                check_choice(name, item, meta["choices"], where=where or "transferlab")
    return value


def check_settings(settings: T, where: str) -> T:
    """Checks every field of a settings dataclass instance (`check_value`), writes the converted values back (frozen
    dataclasses too) and returns the instance."""
    hints = typing.get_type_hints(type(settings))
    for f in fields(settings):  # type: ignore[arg-type]
        value = check_value(f.name, getattr(settings, f.name), hints[f.name], f.metadata, where)
        object.__setattr__(settings, f.name, value)
    return settings


def settings_from(cls: type[T], data: dict[str, Any], where: str, aliases: dict[str, str] | None = None) -> T:
    """An instance of `cls` from a mapping. `aliases` are other spellings of a setting that mean exactly the same
    (Keras' `learning_rate` for `lr`): they are accepted. Unknown keys are refused, with the close names.

    Example:
        >>> from transferlab.training.config import TrainConfig
        >>> settings_from(TrainConfig, {"learning_rate": 1e-4}, "training", {"learning_rate": "lr"}).lr
        0.0001
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    aliases = aliases or {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = aliases.get(key, key)
        if name not in names:
            raise SettingError(f"Unknown {where} setting {key!r}." + did_you_mean(key, [*names, *aliases])
                               + f" Known settings: {', '.join(names)}.")
        if name in out:
            raise SettingError(f"The {where} setting {name!r} is given twice (as {name!r} and as its Keras name "
                               f"{next(k for k, v in aliases.items() if v == name)!r}); give it once.")
        out[name] = value
    return cls(**out)


def field_help(cls: type) -> dict[str, str]:
    """The Google-style "Attributes:" section of a dataclass's docstring as {field: one-line help}."""
    docs: dict[str, str] = {}
    lines = (inspect.getdoc(cls) or "").splitlines()
    inside, name = False, None
    for line in lines:
        if line.strip() == "Attributes:":
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        if inside and line.startswith("    ") and not line.startswith("     ") and ":" in line:
            name, text = line.strip().split(":", 1)
            docs[name] = text.strip()
        elif inside and name and line.strip():
            docs[name] += " " + line.strip()
    return docs
