"""The errors transferlab raises for things the user can fix, and the one helper that words them.

Every user-facing error is a `TransferlabError`; the CLI prints those as one clean line and exits with code 2.
Anything else is a bug: the CLI shows its traceback (exit 1) and asks to report it. Each class also derives
from the built-in exception Python users would catch (`ValueError`, `FileNotFoundError`, ...), so
`except ValueError` keeps working.

Example:
    >>> try:
    ...     check_choice("monitor", "val_acc", ["val_accuracy", "val_loss"], where="train")
    ... except SettingError as e:
    ...     print(e)
    The 'monitor' parameter of train must be one of 'val_accuracy', 'val_loss'. Got 'val_acc' instead. Did you \
mean 'val_accuracy' or 'val_loss'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["TransferlabError", "SettingError", "DataError", "ArchiveError", "MissingFileError", "RunFolderError",
           "WeightsUnavailableError", "DownloadError", "ParityError", "TrainingDiverged", "check_choice",
           "did_you_mean", "describe_os_error"]


class TransferlabError(Exception):
    """Base class of the errors a user can fix; the message says how."""


class SettingError(TransferlabError, ValueError):
    """A parameter or configuration value is not allowed (the message names it and the allowed values)."""


class DataError(TransferlabError, ValueError):
    """The data (folder, index, image, labels) cannot be used as given."""


class ArchiveError(DataError):
    """An archive is unsafe or unreadable (path traversal, links, bombs, corrupt members)."""


class MissingFileError(TransferlabError, FileNotFoundError):
    """A file or folder the user named (data, run folder, bundle, weights) does not exist or is incomplete."""


class RunFolderError(TransferlabError, FileExistsError):
    """The output folder exists and would be overwritten."""


class WeightsUnavailableError(TransferlabError, RuntimeError):
    """Pretrained weights cannot be had here (offline, or none exist); the message says what to pass instead."""


class DownloadError(TransferlabError, RuntimeError):
    """A download failed or its content did not match its checksum."""


class ParityError(TransferlabError, RuntimeError):
    """An exported model does not reproduce the PyTorch model closely enough."""


class TrainingDiverged(TransferlabError, RuntimeError):
    """The training loss became NaN or infinite; the best finite checkpoint was kept. The CLI exits with 1: the
    run failed, although the settings were valid."""

    exit_code = 1


def describe_os_error(error: OSError) -> str:
    """What the machine refused, in words that say what to do: a full disk, a read-only file system, no permission,
    a path too long; the file is named.

    Example:
        >>> import errno
        >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "runs/cd/best.ckpt"))
        "The disk is full: writing 'runs/cd/best.ckpt' failed. Free some space (or choose another --out on another \
disk) and run the command again; a training run continues with --resume."
    """
    import errno

    name = str(error.filename) if error.filename is not None else ""
    shown = f"'{name[:100]}...'" if len(name) > 100 else f"'{name}'" if name else "a file"
    code = error.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return (f"The disk is full: writing {shown} failed. Free some space (or choose another --out on another "
                "disk) and run the command again; a training run continues with --resume.")
    if code == errno.EROFS:
        return f"{shown} is on a read-only file system. Choose a folder you can write to (e.g. --out ~/runs/mine)."
    if code in (errno.EACCES, errno.EPERM):
        return f"No permission to use {shown}. Choose a file or folder you own, or change its permissions."
    if code == errno.ENAMETOOLONG:
        return f"The path {shown} is longer than the file system allows. Use a shorter name."
    if code in (errno.ENOENT, errno.ENOTDIR):
        return f"{shown} does not exist (or a folder in its path is a file). Check the path."
    if code == errno.EISDIR:
        return f"{shown} is a folder where a file is expected."
    if code in (errno.EMFILE, errno.ENFILE):
        return "Too many files are open on this machine; close other programs or raise the limit (ulimit -n)."
    return f"The machine refused to use {shown}: {error.strerror or error}."


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
    """Returns `value` if it is one of `choices`, else raises a SettingError that says what to pass.

    Example:
        >>> check_choice("monitor", "val_accuracy", ["val_accuracy", "val_loss"], where="train")
        'val_accuracy'
    """
    choices = list(choices)
    if value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise SettingError(
        f"The {name!r} parameter of {where} must be one of {listed}. Got {value!r} instead."
        + did_you_mean(value, choices)
    )
