"""Command-line options generated from a settings dataclass: name, help and default are written once, in the class
(its fields and the "Attributes:" of its docstring); only the grouping into help panels lives with each command.

Options arrive as text (numbers too) and are converted and checked by the settings class itself
(`transferlab._settings.check_settings`), so `--epochs abc`, `--max-upload-mb nan` and YAML's `epochs: abc` get the
same message; `--x/--no-x` booleans show only the flag that changes the default.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Annotated, Any

import typer
from rich.markup import escape as rich_escape

from .._settings import field_help
from ._augment_flags import bool_flag_parameters, merge_bool_flags

__all__ = ["settings_parameters", "given_settings"]


def _kinds(hint: Any) -> list[Any]:
    """The types a hint allows, None left out (`int | None` -> [int]; `list[str]` -> [list[str]])."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def _is_bool(hint: Any) -> bool:
    return _kinds(hint) == [bool]


def _is_list(hint: Any) -> bool:
    kinds = _kinds(hint)
    return len(kinds) == 1 and typing.get_origin(kinds[0]) is list


def settings_parameters(cls: type, panels: dict[str, tuple[str, ...]], skip: set[str] | frozenset[str] = frozenset(),
                        generated_help: dict[str, Callable[[], str]] | None = None,
                        default_panel: str = "Options") -> list[inspect.Parameter]:
    """Keyword-only Typer parameters for the fields of `cls` (but `skip`), in the order of `panels`."""
    helps, hints = field_help(cls), typing.get_type_hints(cls)
    generated = generated_help or {}
    panel_of = {name: panel for panel, names in panels.items() for name in names}
    params: list[inspect.Parameter] = []
    for f in fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        text = rich_escape(generated[f.name]() if f.name in generated else helps.get(f.name, ""))
        panel = panel_of.get(f.name, default_panel)
        if _is_bool(hints[f.name]):  # one visible flag, the one that changes the default; its opposite hidden
            text += " \\[on by default: this flag turns it off]" if default else " \\[off by default]"
            params += bool_flag_parameters(f.name, bool(default), text, panel)
            continue
        if default not in (None, [], {}, ()) and "default" not in text.lower():  # escaped: rich would eat "[...]"
            text += f" \\[default: {default}]"
        kind = list[str] if _is_list(hints[f.name]) else str  # text: the settings class converts and checks it
        option = typer.Option("--" + f.name.replace("_", "-"), help=text, show_default=False, rich_help_panel=panel,
                              metavar="LIST" if kind is not str else _metavar(hints[f.name]))
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[kind | None, option]))
    order = {name: i for i, name in enumerate(n for names in panels.values() for n in names)}
    return sorted(params, key=lambda p: order.get(p.name.removeprefix("no_"), len(order)))


def _metavar(hint: Any) -> str:
    kinds = _kinds(hint)
    return {int: "INTEGER", float: "NUMBER"}.get(kinds[0], "TEXT") if len(kinds) == 1 else "TEXT"


def given_settings(options: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The settings the user gave on the command line (flags merged; absent options and empty lists left out), of
    the fields `names`."""
    merged = merge_bool_flags({k: v for k, v in options.items() if k in names or k.removeprefix("no_") in names})
    return {k: v for k, v in merged.items() if v is not None and v != []}
