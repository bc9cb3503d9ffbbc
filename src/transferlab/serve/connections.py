"""Connection limits for `transferlab serve`: a client that does not finish sending its request (headers and
body) within `client_timeout` seconds is disconnected, so half-sent headers, stalled bodies and idle sockets cannot
pile up; idle keep-alive connections close after `keep_alive` seconds. The requests in progress are capped by the
app (`serve.limits.RequestCap`, `--max-connections`): connections that have sent nothing do not count, so they can
never crowd real requests out; uvicorn's own connection cap stays far above it, as a backstop for the process's
file descriptors. Requests whose upload is complete are never cut by this: a slow model answers 504 after
`--timeout-s`.

Example:
    >>> uvicorn.run(app, **uvicorn_limits(client_timeout=20))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["GuardedH11Protocol", "uvicorn_limits", "CLIENT_TIMEOUT_ENV"]

CLIENT_TIMEOUT_ENV = "TRANSFERLAB_SERVE_CLIENT_TIMEOUT"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each request: armed when the connection opens and again
    after each response; if, when it fires, the request's headers or body are still arriving, the connection is
    closed. (uvicorn's own keep-alive timer starts only after a first response.)"""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if getattr(self, "_guard", None) is not None:
            self._guard.cancel()
        timeout = float(os.environ.get(CLIENT_TIMEOUT_ENV, "20"))
        self._guard = self.loop.call_later(timeout, self._cut_if_receiving)

    def _cut_if_receiving(self) -> None:
        cycle = self.cycle
        receiving = cycle is None or cycle.response_complete or cycle.more_body
        if receiving and not self.transport.is_closing():
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_guard", None) is not None:
            self._guard.cancel()
        super().connection_lost(exc)


def uvicorn_limits(client_timeout: float = 20.0, keep_alive: float = 5.0,
                   max_connections: int = 512) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run`/`uvicorn.Config` that apply these limits (the client timeout travels
    through the environment, so `--workers` processes get it too)."""
    os.environ[CLIENT_TIMEOUT_ENV] = str(float(client_timeout))
    return {"http": "transferlab.serve.connections:GuardedH11Protocol", "timeout_keep_alive": keep_alive,
            "limit_concurrency": 8 * max_connections}
