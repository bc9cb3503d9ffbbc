"""Request limits that count as bytes and requests arrive: a body limit per request (a chunked upload without
Content-Length is cut at the limit instead of being read, or spooled to disk, in full first), a budget of upload
bytes held across all requests at once, and a cap on the requests in progress (connections that have sent nothing
are not requests: they cannot crowd real ones out, and the client timeout closes them)."""

from __future__ import annotations

from typing import Any

__all__ = ["BodyLimit", "body_limit_bytes", "UploadBudget", "RequestCap"]


def body_limit_bytes(max_upload_mb: float, max_files: int) -> int:
    """The largest request body: a few files at the per-file limit, plus room for the form's framing."""
    return int(max_upload_mb * 2**20 * min(max_files, 4) + 2**20)


class _TooLarge(Exception):
    pass


class _Busy(Exception):
    pass


class UploadBudget:
    """The upload bytes all requests together may hold at once (one event loop: no lock needed).

    Example:
        >>> budget = UploadBudget(100)
        >>> budget.take(60), budget.take(60), budget.used
        (True, False, 60)
    """

    def __init__(self, total: int) -> None:
        self.total, self.used = int(total), 0

    def take(self, n: int) -> bool:
        if self.used + n > self.total:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used = max(0, self.used - n)


class BodyLimit:
    """ASGI middleware: answers 413 as soon as a request's body passes `limit` bytes, whatever its headers say.

    Example:
        >>> app.add_middleware(BodyLimit, limit=20 * 2**20)  # doctest: +SKIP
    """

    def __init__(self, app: Any, limit: int, budget: UploadBudget | None = None) -> None:
        self.app, self.limit, self.budget = app, int(limit), budget

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0
        held = 0  # bytes of this request counted against the shared budget
        started = False

        async def counting_receive() -> dict:
            nonlocal seen, held
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                seen += size
                if seen > self.limit:
                    raise _TooLarge
                if self.budget is not None:
                    if not self.budget.take(size):
                        raise _Busy
                    held += size
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except (_TooLarge, _Busy) as stop:
            if started:  # pragma: no cover - a response is already on its way: only cutting it off is left
                raise
            from starlette.responses import JSONResponse

            if isinstance(stop, _TooLarge):
                response = JSONResponse({"detail": f"The request body passed the limit of {self.limit / 2**20:.0f} "
                                                   "MB (counted as it arrived). Send fewer or smaller images."}, 413)
            else:
                response = JSONResponse({"detail": "The server is holding as many uploads as it may "
                                                   "(--max-total-upload-mb); try again in a moment."}, 503,
                                        headers={"Retry-After": "2"})
            await response(scope, receive, send)
        finally:
            if self.budget is not None:
                self.budget.give(held)
                if held > 2**20:  # a large upload's memory goes back to the system, not to this process's heap
                    from .._runtime import release_memory

                    release_memory()


class RequestCap:
    """ASGI middleware: at most `limit` HTTP requests in progress; more are answered 503 at once. Only requests
    count (their headers have arrived), never connections that have sent nothing.

    Example:
        >>> app.add_middleware(RequestCap, limit=512)  # doctest: +SKIP
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit, self.active = app, int(limit), 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            from starlette.responses import JSONResponse

            response = JSONResponse({"detail": f"The server is answering {self.limit} requests (--max-connections); "
                                               "try again in a moment."}, 503, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
