"""Fonts for pictures: a Hangul font as matplotlib's fallback, so Korean class names draw as letters."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

__all__ = ["hangul_font", "needs_hangul"]

_HANGUL_FONTS = ("NanumGothic", "Noto Sans CJK KR", "Noto Sans KR", "Malgun Gothic", "AppleGothic", "UnDotum",
                 "Baekmuk Gulim")
_font_state: dict[str, Any] = {}


def hangul_font() -> str | None:
    """A font with Hangul glyphs, added after DejaVu Sans as matplotlib's fallback so that Korean class names draw
    as letters, not boxes (Latin text keeps its usual font): a system font (NanumGothic, Noto Sans CJK KR, Malgun
    Gothic, AppleGothic, ...) or the NanumGothic file of the optional `koreanize-matplotlib` package
    (`pip install 'transferlab[korean]'`; its module is not imported, only its font file is used). None when there
    is none."""
    if "name" in _font_state:
        return _font_state["name"]
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    name = next((n for n in _HANGUL_FONTS if n in installed), None)
    if name is None:
        import importlib.util

        spec = importlib.util.find_spec("koreanize_matplotlib")
        if spec is not None and spec.submodule_search_locations:
            path = Path(list(spec.submodule_search_locations)[0]) / "fonts" / "NanumGothic.ttf"
            if path.is_file():
                font_manager.fontManager.addfont(str(path))
                name = "NanumGothic"
    if name is not None:
        family = list(matplotlib.rcParams["font.family"])
        if family == ["sans-serif"]:  # matplotlib falls back glyph by glyph along an explicit list of families
            first = next((f for f in matplotlib.rcParams["font.sans-serif"] if f in installed), "DejaVu Sans")
            matplotlib.rcParams["font.family"] = [first, name]
        elif name not in family:  # the user chose fonts: Hangul falls back to ours after theirs
            matplotlib.rcParams["font.family"] = [*family, name]
    _font_state["name"] = name
    return name


def needs_hangul(texts: Sequence[str]) -> None:
    """Makes sure Korean text can be drawn; warns once (naming the fix) when no font has Hangul."""
    if not any("\uac00" <= ch <= "\ud7a3" or "\u3131" <= ch <= "\u318e" for t in texts for ch in str(t)):
        return
    if hangul_font() is None and not _font_state.get("warned"):
        import warnings

        _font_state["warned"] = True
        warnings.warn("Korean class names will draw as empty boxes: no font with Hangul is installed. "
                      "`pip install 'transferlab[korean]'` (NanumGothic), or install a system font such as "
                      "fonts-nanum or Noto Sans CJK.", UserWarning, stacklevel=3)


