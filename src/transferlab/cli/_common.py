"""Shared CLI plumbing: transferlab's own errors as clean messages, everything else as a bug report; JSON output."""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from ..errors import TransferlabError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, soft_wrap=True)
ISSUES_URL = "https://github.com/transferlab/transferlab/issues"


def user_errors(func: F) -> F:
    """Runs a command: a `TransferlabError` (bad input, missing file, offline weights, ...) prints as one red line
    and exits with code 2; any other exception is a bug: its traceback is shown, with a request to report it,
    and the exit code is 1. Ctrl+C exits with 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TransferlabError as e:
            err_console.print(f"[bold red]Error:[/] {e}", markup=True, highlight=False)
            raise typer.Exit(code=getattr(e, "exit_code", 2)) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("Interrupted.", highlight=False)
            raise typer.Exit(code=130) from None
        except Exception:  # noqa: BLE001 - a bug: show it whole, ask for a report
            traceback.print_exc()
            err_console.print(f"[bold red]Internal error[/] in `transferlab {func.__name__}`: this is a bug in "
                              f"transferlab, not in your input. Please report it with the traceback above at "
                              f"{ISSUES_URL}", markup=True, highlight=False)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def quietable(func: F) -> F:
    """Gives a command `-q/--quiet`: nothing on stdout (files are still written, errors still go to stderr).
    Commands that have their own `quiet` are returned unchanged."""
    signature = inspect.signature(func, eval_str=True)
    if "quiet" in signature.parameters:
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool = False, **kwargs: Any) -> Any:
        if not quiet:
            return func(*args, **kwargs)
        with contextlib.redirect_stdout(io.StringIO()):
            return func(*args, **kwargs)

    option = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing (files are still written; errors "
                                                                "still go to stderr).")]
    parameter = inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=option)
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), parameter])  # type: ignore
    wrapper.__annotations__ = {**{p.name: p.annotation for p in signature.parameters.values()}, "quiet": option}
    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Writes one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
