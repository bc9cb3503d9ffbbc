"""Named data sets with their official URLs and checksums; resumable, verified downloads.

Offline, the error says where to put the file by hand. Tests serve archives from 127.0.0.1.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from .._io import file_digest
from ..errors import DataError, DownloadError, did_you_mean

__all__ = ["DatasetInfo", "DATASETS", "download", "get_dataset", "DownloadError"]




@dataclass(frozen=True)
class DatasetInfo:
    """A named data set: where it comes from and how to verify it.

    Attributes:
        name: The name for `transferlab data get NAME`.
        url: The official download address.
        filename: The file name to save as.
        size: Expected size in bytes.
        md5: Expected MD5 (as published), or None.
        sha256: Expected SHA-256, or None.
        description: One line for listings.
    """

    name: str
    url: str
    filename: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    description: str = ""


DATASETS: dict[str, DatasetInfo] = {
    "cats_and_dogs_filtered": DatasetInfo(
        "cats_and_dogs_filtered", "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
        "cats_and_dogs_filtered.zip", size=68_606_236,
        description="The course's Exercise 1: 2,000 train / 1,000 validation cat and dog photos (Google). No "
                    "checksum is published: verified by size, and its SHA-256 is recorded beside the file."),
    "cifar10": DatasetInfo(
        "cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
        size=170_498_071, md5="c58f30108f718f92721af3b95e74349a",
        description="CIFAR-10, the official python archive (Krizhevsky, 2009): 50,000 train / 10,000 test, 32x32."),
}


def _verify(info: DatasetInfo, path: Path) -> None:
    size = path.stat().st_size
    if info.size is not None and size != info.size:
        raise DownloadError(f"'{path}' has {size:,} bytes, expected {info.size:,} for {info.name}: the download is "
                            "incomplete or another file. Delete it and run `transferlab data get` again.")
    for algorithm in ("md5", "sha256"):
        expected = getattr(info, algorithm)
        if expected and file_digest(path, algorithm) != expected:
            raise DownloadError(f"'{path}' does not match the published {algorithm} of {info.name} ({expected}). "
                                "Delete it and download again.")
    record = path.with_name(path.name + ".sha256")
    actual = file_digest(path, "sha256")
    if record.is_file() and record.read_text().split()[0] != actual:
        raise DownloadError(f"'{path}' changed since it was first downloaded (SHA-256 differs from {record}). "
                            "Delete both files and download again.")
    record.write_text(f"{actual}  {path.name}\n")


def download(info: DatasetInfo, folder: str | os.PathLike[str], quiet: bool = False, timeout: float = 30.0) -> Path:
    """Downloads `info` into `folder` (resuming a partial `.part` file), verifies it and returns its path.

    Raises:
        DownloadError: Offline, a server error, or a checksum mismatch; the message says what to do.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / info.filename
    if target.is_file():
        _verify(info, target)
        return target
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(info.url, headers={"User-Agent": "transferlab"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - official https/http URLs
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(
            f"Could not download {info.name} from {info.url} ({getattr(e, 'reason', e)}). This machine may be "
            f"offline: download the file by hand from {info.url} and save it as '{target}', then run the command "
            "again (it is verified before use)."
        ) from e
    with response:
        resumed = have and response.status == 206
        mode = "ab" if resumed else "wb"
        total = int(response.headers.get("Content-Length") or 0) + (have if resumed else 0)
        columns = (TextColumn(f"Downloading {info.name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn())
        with open(part, mode) as f, Progress(*columns, disable=quiet, transient=True) as progress:
            task = progress.add_task("download", total=total or info.size, completed=have if resumed else 0)
            for chunk in iter(lambda: response.read(1 << 16), b""):
                f.write(chunk)
                progress.advance(task, len(chunk))
    os.replace(part, target)
    try:
        _verify(info, target)
    except DownloadError:
        target.unlink(missing_ok=True)
        raise
    return target


def get_dataset(name: str, folder: str | os.PathLike[str], quiet: bool = False) -> Path:
    """Downloads (or finds) the named data set in `folder` and returns the data folder, extracted.

    Example:
        >>> get_dataset("cats_and_dogs_filtered", "data")  # doctest: +SKIP
        PosixPath('data/.transferlab-extracted/cats_and_dogs_filtered-.../cats_and_dogs_filtered')
    """
    from .archive import extracted_root

    if name not in DATASETS:
        raise DataError(f"Unknown data set {name!r}. Known: {', '.join(DATASETS)}." + did_you_mean(name, DATASETS))
    return extracted_root(download(DATASETS[name], folder, quiet=quiet))
