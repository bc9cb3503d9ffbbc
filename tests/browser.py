"""Real headless Chromium for the page tests (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # no background connections on a closed network


def _find() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def chromium_or_skip() -> str:
    """The Chromium executable; installs Debian's package when absent (root + apt-get), else skips the test."""
    path = _find()
    if path is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        for cmd in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "chromium"]):
            try:
                subprocess.run(cmd, capture_output=True, timeout=900, check=False)
            except (OSError, subprocess.TimeoutExpired):
                break
            if _find():
                break
        path = _find()
    if path is None:
        pytest.skip("Chromium is not installed and could not be installed here (needs root and apt-get: "
                    "`apt-get install chromium`); the real-browser test is skipped.")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (`pip install -e .[test]`)")
    return path


@contextmanager
def browser_page(executable: str, extra_args: tuple[str, ...] = ()) -> Iterator[tuple[Any, list[str]]]:
    """A new page and the list that collects its console errors and page errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=[*ARGS, *extra_args])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, errors
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(app: Any, **settings: Any) -> Iterator[int]:
    """A real uvicorn server on a free loopback port, in a thread, for the duration of the block (its port)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)
