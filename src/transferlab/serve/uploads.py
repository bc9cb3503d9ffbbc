"""Upload checks: size, emptiness, content sniffed from the bytes, pixel limits, then the shared decode."""

from __future__ import annotations

import contextlib
import io
import threading

import numpy as np
from PIL import Image, UnidentifiedImageError

from .._runtime import release_memory
from ..inference.portable import BasePredictor
from .config import ServeConfig

__all__ = ["decode_upload", "LARGE_PIXELS", "image_extras"]

LARGE_PIXELS = 4_000_000  # after decoding an image this large, return the freed memory to the system


def decode_upload(data: bytes, name: str, config: ServeConfig, predictor: BasePredictor,
                  gate: threading.BoundedSemaphore | None = None) -> np.ndarray:
    """Sniffs, checks, decodes and preprocesses one upload into the model's input [3, S, S] (the same decode and
    preprocessing as `predict`); raises HTTPException with 413/415/400. `gate` bounds how many decodes run at once;
    after a large one the freed memory is handed back to the system."""
    from fastapi import HTTPException

    if len(data) > config.max_upload_mb * 2**20:
        raise HTTPException(413, f"'{name}' is {len(data) / 2**20:.1f} MB; the limit is {config.max_upload_mb} MB.")
    if not data:
        raise HTTPException(400, f"'{name}' is empty (0 bytes).")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only: the format comes from the bytes
    except Image.DecompressionBombError:  # Pillow refuses a declared size over twice its limit at once
        raise HTTPException(413, f"'{name}' declares too many pixels to decode safely; the limit is "
                                 f"{config.max_pixels:,}.") from None
    except UnidentifiedImageError:
        raise HTTPException(415, f"'{name}' is not an image (its content is not JPEG, PNG, WebP, GIF, BMP, TIFF...), "
                                 "whatever its name or content type say.") from None
    except Exception as e:  # noqa: BLE001
        raise HTTPException(400, f"'{name}' could not be read as an image: {e}") from None
    w, h = image.size
    if w * h > config.max_pixels:
        raise HTTPException(413, f"'{name}' is {w}x{h} = {w * h:,} pixels; the limit is {config.max_pixels:,}.")
    try:
        with gate or contextlib.nullcontext():
            image = predictor.decode(data)  # the same decode as predict: EXIF rotation, transparency, 16-bit, CMYK
            array = predictor.preprocess(image)
            del image
            if w * h >= LARGE_PIXELS or image_extras(data):
                release_memory()  # a large decode (or large metadata) goes back to the system at once
        return array
    except Image.DecompressionBombError:
        raise HTTPException(413, f"'{name}' is too large to decode safely.") from None
    except Exception as e:  # noqa: BLE001 - truncated or corrupt data
        raise HTTPException(400, f"'{name}' is a corrupt or truncated image: {e}") from None


def image_extras(data: bytes) -> bool:
    """Whether an upload carries much beside its pixels: a file over 1 MB whose size the pixels do not explain, or
    PNG text chunks (decompressed and held by Pillow while decoding, up to `PngImagePlugin.MAX_TEXT_MEMORY`)."""
    return len(data) > 2**20 or (data[:8] == b"\x89PNG\r\n\x1a\n" and any(
        tag in data for tag in (b"zTXt", b"iTXt", b"tEXt")))
