"""A request body limit that counts bytes as they arrive: a chunked upload (no Content-Length) is cut at the limit
instead of being read, or spooled to disk, in full first."""

from __future__ import annotations

from typing import Any

__all__ = ["BodyLimit", "body_limit_bytes"]


def body_limit_bytes(max_upload_mb: float, max_files: int) -> int:
    """The largest request body: a few files at the per-file limit, plus room for the form's framing."""
    return int(max_upload_mb * 2**20 * min(max_files, 4) + 2**20)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: answers 413 as soon as a request's body passes `limit` bytes, whatever its headers say.

    Example:
        >>> app.add_middleware(BodyLimit, limit=20 * 2**20)  # doctest: +SKIP
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:  # pragma: no cover - a response is already on its way: only cutting it off is left
                raise
            from starlette.responses import JSONResponse

            response = JSONResponse({"detail": f"The request body passed the limit of {self.limit / 2**20:.0f} MB "
                                               "(counted as it arrived). Send fewer or smaller images."}, 413)
            await response(scope, receive, send)
