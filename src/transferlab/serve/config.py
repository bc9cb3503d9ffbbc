"""Service settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServeConfig", "API_KEY_ENV"]

API_KEY_ENV = "TRANSFERLAB_API_KEY"


@dataclass(frozen=True)
class ServeConfig:
    """Service settings.

    Attributes:
        max_batch: Most images run together.
        wait_ms: How long the first image of a batch waits for others (0 with batching off).
        batching: Micro-batching on (True) or one request at a time (False).
        max_upload_mb: Largest request body and largest single file.
        max_pixels: Largest image (width x height) as declared in its header; bigger is refused with 413 before
            decoding. A decode holds about 4 bytes per pixel, so this and `decode_slots` bound the memory of decoding.
        decode_slots: Uploads decoded at the same time, across all requests (each is reduced to the model's input
            at once, so a request never holds its full-size images together).
        max_files: Most images in one request.
        timeout_s: A request that waits longer for its result gets 504.
        top_k: Default labels per image (`?top_k=` overrides).
        api_key: Required on every request when set.
    """

    max_batch: int = 32
    wait_ms: float = 5.0
    batching: bool = True
    max_upload_mb: float = 20.0
    max_pixels: int = 24_000_000
    decode_slots: int = 2
    max_files: int = 64
    timeout_s: float = 30.0
    top_k: int = 3
    api_key: str | None = None
