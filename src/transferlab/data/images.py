"""Reading one image as RGB, whatever the file holds: EXIF rotation, grayscale, alpha, palette, CMYK, 16-bit."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

try:  # inside the package
    from ..errors import DataError
except ImportError:  # pragma: no cover - a copy beside predict_onnx.py in an export folder
    DataError = ValueError  # type: ignore[misc,assignment]

__all__ = ["read_labels",
           "IMAGE_EXTENSIONS", "is_image_file", "load_rgb", "pillow_rgb", "decode_plain_jpeg", "read_bytes",
           "check_image", "is_virtual", "VIRTUAL_SCHEMES"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
# Images that are not files of their own, addressed as SCHEME://...: the module of this package that reads them
# (its `read_image(path)` gives a PIL image or the encoded bytes, its `identity(path)` a content identity for caches).
# Only these modules know their path format.
VIRTUAL_SCHEMES = {"cifar://": ".cifar", "tar://": ".stream"}


def is_virtual(path: object) -> bool:
    """True for an image inside something else (a CIFAR batch, a tar shard): see `VIRTUAL_SCHEMES`."""
    return isinstance(path, (str, os.PathLike)) and str(path).startswith(tuple(VIRTUAL_SCHEMES))


def _virtual_reader(path: str | os.PathLike[str]) -> object:
    import importlib

    scheme = next(s for s in VIRTUAL_SCHEMES if str(path).startswith(s))
    return importlib.import_module(VIRTUAL_SCHEMES[scheme], __package__)


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when the file name has an image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float images are scaled to 0..255 (PIL's own convert would clip them to white)."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or img.mode == "I":
        peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr.astype(np.float64) / peak * 255.0, 0, 255)
    else:  # "F"
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=1.0))
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
    return Image.fromarray(arr.round().astype(np.uint8), mode="L")


# PNG text chunks (tEXt/zTXt/iTXt) are never used here, but Pillow decompresses and keeps them: bound what one image
# may carry (Pillow's own limit is 64 MB), so that a tiny file cannot make a decode hold tens of megabytes
PngImagePlugin.MAX_TEXT_MEMORY = 4 * 2**20

try:  # libjpeg-turbo without Pillow's overhead: ~30% faster JPEG decoding at reduced scale (docs/benchmarks.md)
    import simplejpeg
except ImportError:  # pragma: no cover - an optional speed-up; Pillow decodes everything
    simplejpeg = None


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole file in one read (Pillow reads a JPEG in dozens of small reads)."""
    with open(path, "rb") as f:
        return f.read()


def _has_app1(data: bytes) -> bool:
    """True when the JPEG has an APP1 segment (EXIF or XMP, either of which may carry an orientation) anywhere
    before its image data: such files go to Pillow, which honours both (`exif_transpose`)."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return True  # not a well-formed marker sequence: let Pillow decide
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xE1:
            return True
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: no APP1 before the data
            return False
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return True


def decode_plain_jpeg(data: bytes, min_size: int | None = None) -> np.ndarray | None:
    """Decodes a plain JPEG (YCbCr or grayscale, no EXIF block, not oversized) to an RGB uint8 [H, W, 3]
    array with simplejpeg, at the smallest libjpeg-turbo scale that keeps both sides >= `min_size`.

    Returns None for everything else (not a JPEG, EXIF orientation possible, CMYK, corrupt data, no
    simplejpeg): the caller then decodes with Pillow, which handles and reports those cases.
    """
    if simplejpeg is None or data[:2] != b"\xff\xd8" or _has_app1(data):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace not in ("YCbCr", "Gray") or height * width > (Image.MAX_IMAGE_PIXELS or float("inf")):
            return None
        side = int(min_size or 0)
        return simplejpeg.decode_jpeg(data, "RGB", min_height=side, min_width=side)
    except (ValueError, RuntimeError, OSError):
        return None


def load_rgb(path: str | os.PathLike[str] | bytes | BinaryIO, background: tuple[int, int, int] = (255, 255, 255),
             min_size: int | None = None) -> Image.Image:
    """Opens an image (a file path, its bytes, or a binary file object) as an upright 8-bit RGB PIL image.

    EXIF orientation is applied; transparent pixels are composed over `background`; grayscale, palette,
    CMYK and 16-bit images are converted. With `min_size`, a large JPEG is decoded at a reduced scale
    that keeps both sides at least `min_size` pixels: a phone photo decodes many times faster when the model
    only needs 256 pixels. Plain JPEGs go through simplejpeg (`decode_plain_jpeg`), the rest through Pillow
    (`pillow_rgb`), whatever the image came from, so a file, a tar member and an upload decode alike.

    Example:
        >>> load_rgb("cat.png").mode  # doctest: +SKIP
        'RGB'
    """
    if is_virtual(path):
        image = _virtual_reader(path).read_image(str(path))  # type: ignore[attr-defined]
        if isinstance(image, Image.Image):
            return image
        path = image  # the encoded bytes of a member
    if isinstance(path, bytes):
        data = path
    elif isinstance(path, (str, os.PathLike)):
        data = read_bytes(path)
    else:
        data = path.read()
    plain = decode_plain_jpeg(data, min_size)
    if plain is not None:
        return Image.fromarray(plain)
    return pillow_rgb(data, background, min_size)


def pillow_rgb(data: bytes, background: tuple[int, int, int] = (255, 255, 255),
               min_size: int | None = None) -> Image.Image:
    """`load_rgb` through Pillow only: every format and mode, EXIF orientation, reduced-scale JPEG (`draft`)."""
    try:
        opened = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # Pillow's message names an in-memory object ("<_io.BytesIO at 0x...>")
        raise UnidentifiedImageError("not an image Pillow can identify (an unknown format, or a damaged or "
                                     f"truncated file of {len(data):,} bytes)") from None
    with opened as img:
        width, height = img.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit and width * height > limit:  # the same rule as the data scan (`check_image`), for every command
            raise Image.DecompressionBombError(f"too large to decode safely: {width}x{height} = {width * height:,} "
                                               f"pixels, over the limit of {limit:,}")
        if min_size and img.format == "JPEG":
            img.draft("RGB", (min_size, min_size))
        if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation; exif_transpose copies even when upright
            img = ImageOps.exif_transpose(img)
        img.load()
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(canvas, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def check_image(path: str | os.PathLike[str]) -> tuple[str | None, tuple[int, int] | None]:
    """Decodes the file fully (cheaply, at reduced JPEG scale) and returns (error, (width, height)).

    The error is None for a readable image, else a short reason for the data report.
    """
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)", None
        with Image.open(path) as img:  # reads the header only
            size = img.size
            limit = Image.MAX_IMAGE_PIXELS
            if limit and size[0] * size[1] > limit:  # checked here, not through the (process-wide, not
                # thread-safe) warning filters: scans run in threads
                return (f"too large (possible decompression bomb): {size[0]}x{size[1]} = {size[0] * size[1]:,} "
                        f"pixels, over Pillow's limit of {limit:,}"), None
            img.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            img.load()
        return None, size
    except UnidentifiedImageError:
        return "not an image PIL can identify", None
    except (OSError, SyntaxError, ValueError) as e:
        return f"cannot decode: {e}", None
    except Image.DecompressionBombError as e:
        return f"too large: {e}", None


def file_identity(path: str | os.PathLike[str]) -> str:
    """A string that changes when the image's content may have changed (size and modification time), for caches."""
    if is_virtual(path):
        return _virtual_reader(path).identity(str(path))  # type: ignore[attr-defined]
    st = os.stat(path)
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _read_json(path: Path, what: str, example: str) -> object:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"'{path}' is not valid JSON ({e}); it should hold {what}, e.g. {example}. Re-export or "
                        "re-train to write it again.") from None


def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """A bundle's labels.json: a non-empty list of class names (ImageNet's have repeats: 'crane', 'maillot');
    anything else is a DataError naming the file (a shared or damaged bundle must not fail with a traceback)."""
    path = Path(path)
    labels = _read_json(path, "the class names", '["cats", "dogs"]')
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise DataError(f"'{path}' must hold a list of class names, e.g. [\"cats\", \"dogs\"]; got "
                        f"{str(labels)[:80]}. Re-export or re-train to write it again.")
    return labels
