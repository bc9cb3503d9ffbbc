"""The machine header of every benchmark's JSON (docs/benchmarks.md quotes it with each table).

Benchmarks run as scripts (`.venv/bin/python benchmarks/NAME.py`), so this folder is on `sys.path` and they
import it as `from _machine import machine`.

Example:
    >>> sorted(machine(threads=2))
    ['cpu', 'cpus', 'platform', 'python', 'threads']
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    """The processor's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(**extra: Any) -> dict[str, Any]:
    """{"platform", "cpu", "cpus", "python"} of this machine, plus what a benchmark adds (threads, ...)."""
    return {"platform": platform.platform(), "cpu": cpu_name(), "cpus": os.cpu_count(),
            "python": platform.python_version(), **extra}
