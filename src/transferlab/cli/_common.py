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
from rich.markup import escape

from .._console import terminal_safe
from ..errors import TransferlabError, describe_os_error

F = TypeVar("F", bound=Callable[..., Any])

# errors wrap between words in a terminal and stay on one line in a pipe or log file
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
MAX_MESSAGE = 2000  # an error quoting a huge value stays readable: its start and its end are kept


def _bounded(text: str) -> str:
    """A message of at most ~MAX_MESSAGE characters (its start, then its end: the advice is last)."""
    return text if len(text) <= MAX_MESSAGE else f"{text[:MAX_MESSAGE - 600]} [...] {text[-500:]}"


def _command_typed() -> str:
    """The command as the user typed it, up to its first option: 'transferlab data info' (not the function name)."""
    try:
        from typer._click.globals import get_current_context  # typer 0.2x carries its own click
    except ImportError:  # older typer runs on click itself
        from click import get_current_context

    context = get_current_context(silent=True)
    if context is None:
        return "transferlab"
    return " ".join(["transferlab", *context.command_path.split()[1:]])


def user_errors(func: F) -> F:
    """Runs a command: a `TransferlabError` (bad input, missing file, offline weights, ...) prints as one red line
    and exits with code 2; any other exception is a bug: its traceback is shown, with a request to report it,
    and the exit code is 1. Ctrl+C exits with 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TransferlabError as e:
            err_console.print(f"[bold red]Error:[/] {escape(_bounded(terminal_safe(e)))}", markup=True,
                              highlight=False)
            raise typer.Exit(code=getattr(e, "exit_code", 2)) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("Interrupted.", highlight=False)
            raise typer.Exit(code=130) from None
        except OSError as e:  # the machine's state (full disk, read-only, permissions, a path too long): no bug
            err_console.print(f"[bold red]Error:[/] {escape(_bounded(terminal_safe(describe_os_error(e))))}",
                              markup=True, highlight=False)
            raise typer.Exit(code=2) from None
        except Exception:  # noqa: BLE001 - a bug: show it whole, ask for a report
            traceback.print_exc()
            err_console.print(f"[bold red]Internal error[/] in `{escape(_command_typed())}`: this is a bug in "
                              "transferlab, not in your input. Please report it to the people who gave you "
                              "transferlab, with the command you ran, the traceback above and the output of "
                              "`transferlab --version`.", markup=True, highlight=False)
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


def print_predictions(results: list[dict[str, Any]], title: str, wnid: bool = False) -> None:
    """Each image's top labels, readable at any width: image names relative to their common folder, a table
    when the terminal is wide, else one block per image (names and labels are never cut mid-word)."""
    import os

    from rich.markup import escape
    from rich.table import Table

    console = Console(soft_wrap=False)
    files = [r["path"] for r in results if "://" not in r["path"]]
    base = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in files]) if len(files) > 1 else None

    def name(path: str) -> str:
        return terminal_safe(os.path.relpath(os.path.abspath(path), base) if base and "://" not in path else path)

    def label(t: dict[str, Any]) -> str:
        return terminal_safe((f"{t['wnid']} " if wnid and t.get("wnid") else "")
                             + f"{t['label']} ({t['probability']:.3f})")

    if base:
        console.print(f"{title} - images in {base}", highlight=False, markup=False)
    else:
        console.print(title, highlight=False, markup=False)
    if console.width >= 100:
        table = Table(show_header=True)
        table.add_column("image", overflow="fold")
        table.add_column("top labels (probability)")
        for r in results:
            table.add_row(escape(name(r["path"])), f"[red]{escape(terminal_safe(r['error']))}" if "error" in r
                          else escape(", ".join(label(t) for t in r["top"])))
        console.print(table)
        return
    for r in results:
        console.print(name(r["path"]), style="bold", highlight=False, markup=False, soft_wrap=True)
        if "error" in r:
            console.print(f"  {terminal_safe(r['error'])}", style="red", highlight=False, markup=False)
        for i, t in enumerate(r.get("top", []), start=1):  # rich wraps these between words
            console.print(f"  {i}. {label(t)}", highlight=False, markup=False)


def print_json(data: Any) -> None:
    """Writes one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
