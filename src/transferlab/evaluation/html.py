"""HTML for notebook outputs: figures inlined as base64 images, metric cards with inline styles."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["figure_html", "cards_html"]


def figure_html(figure: Any, width: int | None = None) -> str:
    """An `<img>` holding `figure` (a matplotlib Figure, a Display, or a PNG file) inline as base64: notebook
    outputs and HTML exports show it without the run folder beside them."""
    import base64
    import io
    from pathlib import Path

    if isinstance(figure, (str, os.PathLike)):
        path = Path(figure)
        if not path.is_file():
            return ""
        data = path.read_bytes()
    else:
        figure = getattr(figure, "figure_", figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)
        data = buffer.getvalue()
    size = f" width='{width}'" if width else ""
    return f"<img{size} style='max-width:100%' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def cards_html(items: Sequence[tuple[str, Any]]) -> str:
    """Metric cards (name above, value in bold) with inline styles, for notebook outputs."""
    import html

    cards = []
    for name, value in items:
        if value is None:
            continue
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        cards.append("<div style='display:inline-block;border:1px solid #ccc;border-radius:6px;padding:6px 12px;"
                     f"margin:0 8px 8px 0'>{html.escape(name)}<br><b style='font-size:1.3em'>{html.escape(text)}"
                     "</b></div>")
    return "<div>" + "".join(cards) + "</div>"


