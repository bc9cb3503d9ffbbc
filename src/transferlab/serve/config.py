"""Service settings: one dataclass, checked as every settings class is (`transferlab._settings`), from which
`transferlab serve` generates its options."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .._settings import check_settings

__all__ = ["ServeConfig", "API_KEY_ENV"]

API_KEY_ENV = "TRANSFERLAB_API_KEY"


def _max_workers() -> int:
    return 4 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeConfig:
    """Service settings.

    Attributes:
        host: Address to bind; anything but loopback needs an API key.
        port: Port (1-65535).
        workers: Server processes (each loads the model); at most 4 per CPU.
        api_key: Required on every request when set (or TRANSFERLAB_API_KEY), as the X-API-Key header.
        max_batch: Most images run together (micro-batching).
        wait_ms: How long the first image of a batch waits for others, in milliseconds (0 with batching off).
        batching: Micro-batching on, or one request at a time.
        max_upload_mb: Largest request body and largest single file, in MB.
        max_total_upload_mb: Most upload bytes held at once across all requests, in MB: a request that would pass
            it is answered 503 (try again in a moment), and the memory of large uploads is given back as they end.
        max_pixels: Largest image (width x height) as declared in its header; bigger is refused with 413 before
            decoding. A decode holds about 4 bytes per pixel, so this and `decode_slots` bound the memory of decoding.
        decode_slots: Uploads decoded at the same time, across all requests (each is reduced to the model's input
            at once, so a request never holds its full-size images together).
        max_files: Most images in one request.
        timeout_s: A request that waits longer for its result gets 504, in seconds.
        client_timeout: Seconds a client has to send its whole request (headers and upload); stalled connections
            are closed.
        max_connections: Connections that are sending a request or waiting for its answer, at once; more are
            answered 503 (idle connections that have sent nothing do not count).
        top_k: Default labels per image (`?top_k=` overrides).
    """

    host: str = field(default="127.0.0.1", metadata={"example": "127.0.0.1"})
    port: int = field(default=8000, metadata={"ge": 1, "le": 65535, "example": "8000"})
    workers: int = field(default=1, metadata={"ge": 1, "le": _max_workers, "example": "2"})
    api_key: str | None = None
    max_batch: int = field(default=32, metadata={"ge": 1, "le": 1024, "example": "32"})
    wait_ms: float = field(default=5.0, metadata={"ge": 0, "le": 1000, "example": "5"})
    batching: bool = True
    max_upload_mb: float = field(default=20.0, metadata={"gt": 0, "le": 1024, "example": "20"})
    max_total_upload_mb: float = field(default=100.0, metadata={"gt": 0, "le": 65536, "example": "100"})
    max_pixels: int = field(default=24_000_000, metadata={"ge": 1, "le": 1_000_000_000, "example": "24000000"})
    decode_slots: int = field(default=2, metadata={"ge": 1, "le": 256, "example": "2"})
    max_files: int = field(default=64, metadata={"ge": 1, "le": 1000, "example": "64"})
    timeout_s: float = field(default=30.0, metadata={"gt": 0, "le": 3600, "example": "30"})
    client_timeout: float = field(default=20.0, metadata={"gt": 0, "le": 3600, "example": "20"})
    max_connections: int = field(default=512, metadata={"ge": 1, "le": 65536, "example": "256"})
    top_k: int = field(default=3, metadata={"ge": 1, "le": 1000, "example": "3"})

    def __post_init__(self) -> None:
        check_settings(self, "serve")
