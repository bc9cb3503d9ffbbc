"""Atomic writes: a crash never leaves a half-written report, bundle or checkpoint behind."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path` in one rename.

    Example:
        >>> with atomic_path("out.txt") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("done")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 (and writers may recreate the file): a run folder is
        os.replace(tmp, path)  # read by others on shared lab servers, as files made with open() are
        if os.environ.get("TRANSFERLAB_WRITE_LOG"):  # an audit trail of who wrote what (distributed tests)
            with open(os.environ["TRANSFERLAB_WRITE_LOG"], "a", encoding="utf-8") as log:
                log.write(f"{global_rank()}\t{path}\n")
    finally:
        if tmp.exists():
            tmp.unlink()


RUN_MARKER = ".transferlab-run"  # written into every run folder when it is created: the proof that we made it


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process's umask (read once, by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the initialised torch.distributed process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def global_rank() -> int:
    """This process's rank in a distributed run (0 when not distributed), from the launchers' variables:
    torchrun's RANK, SLURM's SLURM_PROCID, Lightning's NODE_RANK/LOCAL_RANK (and the process group's own rank
    once it is initialised). Before that, with Lightning's launcher, the number is exact on one node and
    always 0 exactly in the process of rank 0, which is what the writers need."""
    rank, world = distributed_world()
    if world > 1:
        return rank
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    local, node = os.environ.get("LOCAL_RANK", "0"), os.environ.get("NODE_RANK", "0")
    return int(local) + int(node) if local.isdigit() and node.isdigit() else 0


def is_rank_zero() -> bool:
    """True in the process that writes run folders, checkpoints and reports."""
    return global_rank() == 0


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha1") -> str:
    """Hex digest of a file's content, read in 1 MiB chunks (cache keys, duplicates, download checks).

    Example:
        >>> file_digest("cats.zip", "sha256")  # doctest: +SKIP
        '3f1c...'
    """
    st = os.stat(path)
    key = (os.fspath(path), algorithm, st.st_size, st.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if len(_DIGESTS) > 1_000_000:  # bounded: a digest is ~100 bytes
        _DIGESTS.clear()
    _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


_DIGESTS: dict[tuple, str] = {}  # (path, algorithm, size, mtime) -> digest: the leak check and cache keys share


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Writes `text` to `path` atomically and returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Writes `data` as indented UTF-8 JSON, atomically; NaN and infinities become null (JSON has no such numbers,
    and a file other tools cannot parse helps no one)."""
    return write_text(path, json.dumps(_finite(data), indent=2, ensure_ascii=False, default=str,
                                       allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_yaml(path: str | os.PathLike[str], data: Any) -> Path:
    """Writes `data` as YAML (keys in insertion order), atomically."""
    return write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


MAX_YAML_CHARS = 1_000_000  # a settings file is a few hundred lines; more is a mistake or an attack


class RefusedYAML(yaml.MarkedYAMLError):
    """YAML that parses, but that settings files have no need of: too long, or with anchors and aliases (a few
    lines of `&a [*a, *a, ...]` expand into billions of values: the "billion laughs")."""


def safe_yaml(text: str) -> Any:
    """`yaml.safe_load` for settings files written by people: at most `MAX_YAML_CHARS` characters and no anchors or
    aliases (refused with a `yaml.MarkedYAMLError` that names the line, like any other YAML mistake).

    Example:
        >>> safe_yaml("epochs: 10")
        {'epochs': 10}
        >>> try:
        ...     safe_yaml("a: &x [1]\\nb: *x")
        ... except RefusedYAML as e:
        ...     print(e.problem_mark.line + 1, e.problem)
        1 anchors and aliases (&name, *name) are not allowed in a settings file
    """
    if len(text) > MAX_YAML_CHARS:
        raise RefusedYAML(problem=f"the file has {len(text):,} characters; a settings file has at most "
                                  f"{MAX_YAML_CHARS:,}")
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise RefusedYAML(problem="anchors and aliases (&name, *name) are not allowed in a settings file",
                              problem_mark=event.start_mark)
    return yaml.safe_load(text)
