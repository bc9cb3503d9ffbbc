"""Shared CLI plumbing: turning library errors into clear messages, and printing JSON."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from ..models.weights import WeightsUnavailableError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, soft_wrap=True)
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, WeightsUnavailableError)


def user_errors(func: F) -> F:
    """Prints a user error (bad input, missing file, offline weights) as one red line and exits with code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as e:
            err_console.print(f"[bold red]Error:[/] {e}", markup=True, highlight=False)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Writes one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
