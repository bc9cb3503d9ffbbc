"""Upload checks: size, emptiness, content sniffed from the bytes, pixel limits, then the shared decode."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from ..inference.portable import BasePredictor
from .config import ServeConfig

__all__ = ["decode_upload"]


def decode_upload(data: bytes, name: str, config: ServeConfig, predictor: BasePredictor) -> Image.Image:
    """Sniffs, checks and decodes one upload; raises HTTPException with 413/415/400."""
    from fastapi import HTTPException

    if len(data) > config.max_upload_mb * 2**20:
        raise HTTPException(413, f"'{name}' is {len(data) / 2**20:.1f} MB; the limit is {config.max_upload_mb} MB.")
    if not data:
        raise HTTPException(400, f"'{name}' is empty (0 bytes).")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only: the format comes from the bytes
    except UnidentifiedImageError:
        raise HTTPException(415, f"'{name}' is not an image (its content is not JPEG, PNG, WebP, GIF, BMP, TIFF...), "
                                 "whatever its name or content type say.") from None
    except Exception as e:  # noqa: BLE001
        raise HTTPException(400, f"'{name}' could not be read as an image: {e}") from None
    w, h = image.size
    if w * h > config.max_pixels:
        raise HTTPException(413, f"'{name}' is {w}x{h} = {w * h:,} pixels; the limit is {config.max_pixels:,}.")
    try:
        return predictor.decode(data)  # the same decode as predict: EXIF rotation, transparency, 16-bit, CMYK
    except Image.DecompressionBombError:
        raise HTTPException(413, f"'{name}' is too large to decode safely.") from None
    except Exception as e:  # noqa: BLE001 - truncated or corrupt data
        raise HTTPException(400, f"'{name}' is a corrupt or truncated image: {e}") from None
