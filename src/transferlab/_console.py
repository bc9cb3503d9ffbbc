"""Console helpers shared by the layers: rich progress bars."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["progress_bar", "in_notebook", "EpochTable", "terminal_safe", "log_console"]

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0)]}


def terminal_safe(text: object) -> str:
    """`text` with control characters written out (`\\x1b`), so that a file or class name holding escape codes
    cannot move the cursor, recolour or retitle the user's terminal; newlines and tabs stay.

    Example:
        >>> terminal_safe("cat\\x1b[2Jdog")
        'cat\\\\x1b[2Jdog'
    """
    return str(text).translate(_CONTROL)


def progress_bar(quiet: bool) -> Progress:
    """A transient rich progress bar on stderr (description, bar, n/N, time left). It is drawn only on a
    terminal: `quiet`, a pipe, a log file or a notebook get no bar (and no blank lines where one would be)."""
    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, disable=quiet or not console.is_terminal or console.is_jupyter, transient=True)


def log_console(quiet: bool = False) -> Console:
    """The console a long job writes its lines to (stderr): in a terminal it wraps between words; in a pipe or a
    log file each message stays one line; in a notebook it writes plain text to stdout (a stream the page wraps,
    not rich's HTML, whose scrolling `<pre>` cuts long lines and hides underscores such as efficientnet_lite0's in
    rendered pages; and not stderr, which notebooks colour as an error)."""
    import sys

    notebook = in_notebook()
    return Console(quiet=quiet, stderr=not notebook, soft_wrap=notebook or not sys.stderr.isatty(),
                   force_jupyter=False, force_terminal=False if notebook else None)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook front-end draws HTML outputs), False in a terminal or a pipe."""
    import sys

    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return bool(get and type(get()).__name__ == "ZMQInteractiveShell")


class EpochTable:
    """One HTML table that grows a row per epoch in a notebook (like fastai's), updated in place.

    The text/plain form of the same output holds the epoch lines, so a log of the notebook reads like the
    console.

    Example:
        >>> table = EpochTable(["epoch", "loss"])  # doctest: +SKIP
        >>> table.add(["1/3", "0.693"], "Epoch 1/3  loss 0.693")  # doctest: +SKIP
    """

    def __init__(self, columns: list[str]) -> None:
        self.columns, self.rows, self.lines, self.handle = list(columns), [], [], None

    def _bundle(self) -> dict[str, str]:
        import html

        head = "".join(f"<th style='text-align:right'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:right'>{html.escape(str(v))}</td>" for v in row)
                       + "</tr>" for row in self.rows)
        return {"text/html": f"<table class='transferlab-epochs'><thead><tr>{head}</tr></thead>"
                             f"<tbody>{body}</tbody></table>",
                "text/plain": "\n".join(self.lines)}

    def add(self, cells: list[str], line: str) -> None:
        """Appends a row (and its text line) and redraws the table where it first appeared."""
        from IPython.display import display

        self.rows.append(cells)
        self.lines.append(line)
        if self.handle is None:
            self.handle = display(self._bundle(), raw=True, display_id=True)
        else:
            self.handle.update(self._bundle(), raw=True)
