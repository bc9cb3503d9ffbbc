"""Safe extraction of zip and tar archives (the course's `cats_and_dogs_filtered.zip` works as DATA).

Refused, with the member named: absolute paths, `..` components (zip-slip), links pointing outside the
destination, device files, and archives that would expand beyond a size or compression-ratio limit.
An archive is extracted once, into `.transferlab-extracted/` beside it, atomically (temporary folder, then
rename), and reused while the archive is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import ArchiveError

__all__ = ["ArchiveError", "is_archive", "safe_extract", "extracted_root", "MAX_BYTES", "MAX_RATIO"]

MAX_BYTES = 50 * 1024**3  # 50 GiB expanded
MAX_RATIO = 200  # expanded size / archive size
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")




def is_archive(path: str | os.PathLike[str]) -> bool:
    name = str(path).lower()
    return Path(path).is_file() and name.endswith(ARCHIVE_SUFFIXES)


def _check_name(archive: Path, name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"Refusing archive '{archive}': member {name!r} has an absolute path.")
    if ".." in p.parts:
        raise ArchiveError(f"Refusing archive '{archive}': member {name!r} points outside the folder ('..').")


def _check_link(archive: Path, name: str, target: str) -> None:
    """A link may only point inside the extracted folder."""
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise ArchiveError(f"Refusing archive '{archive}': link {name!r} -> {target!r} is absolute.")
    depth = len(PurePosixPath(name).parent.parts)
    for part in PurePosixPath(target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise ArchiveError(f"Refusing archive '{archive}': link {name!r} -> {target!r} points outside the "
                               "folder.")


def _check_size(archive: Path, total: int, max_bytes: int, max_ratio: float) -> None:
    size = max(1, archive.stat().st_size)
    if total > max_bytes:
        raise ArchiveError(f"Refusing archive '{archive}': it expands to {total:,} bytes, over the limit of "
                           f"{max_bytes:,}. Extract it yourself if you trust it, and pass the folder.")
    if total / size > max_ratio:
        raise ArchiveError(f"Refusing archive '{archive}': it expands {total / size:.0f}x (limit {max_ratio:.0f}x), "
                           "like a zip bomb. Extract it yourself if you trust it, and pass the folder.")


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str], max_bytes: int = MAX_BYTES,
                 max_ratio: float = MAX_RATIO) -> Path:
    """Extracts `archive` into `dest` after checking every member; returns `dest`.

    Raises:
        ArchiveError: An unsafe member or an archive over the limits (nothing is extracted).

    Example:
        >>> safe_extract("cats_and_dogs_filtered.zip", "data/")  # doctest: +SKIP
    """
    archive, dest = Path(archive), Path(dest)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_name(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    _check_link(archive, info.filename, zf.read(info).decode("utf-8", "replace"))
            _check_size(archive, sum(i.file_size for i in infos), max_bytes, max_ratio)
            try:  # zipfile never writes more than a member declares; a lie shows as a size or CRC error
                zf.extractall(dest)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
                raise ArchiveError(f"'{archive}' is damaged or misstates its members' sizes ({e}); nothing from it "
                                   "is used. Download or build the archive again.") from None
        return dest
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as e:
        raise ArchiveError(f"'{archive}' is not a zip or tar archive that can be read: {e}") from e
    with tf:
        members = tf.getmembers()
        for m in members:
            _check_name(archive, m.name)
            if m.issym():
                _check_link(archive, m.name, m.linkname)
            elif m.islnk():
                _check_name(archive, m.linkname)  # hard links name a member path from the archive's root
            if m.isdev() or m.isfifo():
                raise ArchiveError(f"Refusing archive '{archive}': member {m.name!r} is a device or pipe.")
        _check_size(archive, sum(m.size for m in members if m.isfile()), max_bytes, max_ratio)
        try:
            tf.extractall(dest, filter="data")  # Python's own guard too: it catches link chains ours may miss
        except tarfile.FilterError as e:
            name = e.tarinfo.name if getattr(e, "tarinfo", None) is not None else "?"
            raise ArchiveError(f"Refusing archive '{archive}': member {name!r}: {e}.") from None
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise ArchiveError(f"'{archive}' is damaged ({e}); nothing from it is used. Download or build the archive "
                               "again.") from None
    return dest


def extracted_root(archive: str | os.PathLike[str]) -> Path:
    """Extracts `archive` once into `.transferlab-extracted/<name>-<digest>/` beside it and returns the data
    folder inside (descending through a single top-level folder, as most archives have)."""
    archive = Path(archive)
    st = archive.stat()
    digest = hashlib.sha1(f"{archive.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]
    stem = archive.name.split(".")[0]
    target = archive.parent / ".transferlab-extracted" / f"{stem}-{digest}"
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=target.parent))
        try:
            safe_extract(archive, tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    root = target
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in ("train", "validation", "val",
                                                                                  "valid", "test"):
            root = entries[0]
            continue
        return root
