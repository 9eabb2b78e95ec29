"""Server-side figures: matplotlib (Agg, no pyplot) to PNG/SVG bytes, cached per input version.

A figure is cached under ``(kind, object id, fingerprint, format)`` in Django's cache framework
(``CACHES["default"]``: Redis in production via ``CACHE_URL``, so every web process shares
it). The fingerprint is a hash of everything the figure is drawn from (the caller passes the
inputs, plus the figure code's version), so a changed input is a new key: nothing has to be
deleted when data change, and stale entries simply age out (``PLOT_CACHE_SECONDS``, default
one week).

Thread safety: every figure is its own ``matplotlib.figure.Figure`` with its own Agg canvas,
never pyplot's global current figure; rendering is additionally serialised by a lock, because
matplotlib documents no thread-safety guarantee for its font and text caches.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.renderers import BaseRenderer

if TYPE_CHECKING:  # matplotlib takes ~0.5 s to import: only when a figure is drawn
    from matplotlib.figure import Figure

CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
DEFAULT_CACHE_SECONDS = 7 * 24 * 3600

_render_lock = threading.Lock()


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (numbers, strings, lists, dicts)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def figure_bytes(fig: Figure, fmt: str, *, dpi: float | None = None) -> bytes:
    """PNG or SVG bytes of a figure, without metadata that changes from run to run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown figure format {fmt!r} (known: {sorted(CONTENT_TYPES)})")
    canvas = FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    canvas.print_figure(buffer, format=fmt, dpi=dpi or fig.dpi, metadata=metadata)
    return buffer.getvalue()


def cache_key(kind: str, object_id: Any, version: str, fmt: str) -> str:
    return f"plot:{kind}:{object_id}:{version}:{fmt}"


def cached_figure(
    kind: str, object_id: Any, version: str, fmt: str, render: Callable[[], Figure]
) -> bytes:
    """The figure's bytes from the cache, or ``render()`` drawn, stored and returned.

    ``version`` must change whenever the figure would (use :func:`fingerprint` over the
    inputs); ``render`` is only called on a cache miss.
    """
    key = cache_key(kind, object_id, version, fmt)
    data = cache.get(key)
    if data is None:
        with _render_lock:
            data = figure_bytes(render(), fmt)
        timeout = getattr(settings, "PLOT_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)
        cache.set(key, data, timeout)
    return data


# --- DRF renderers: the view hands over finished bytes -----------------------------------------


class _FigureRenderer(BaseRenderer):
    charset = None
    render_style = "binary"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict | None = None,
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        # Only reached if a view forgot to fall back to JSON for an error: never send text as
        # an image.
        raise TypeError(f"{type(self).__name__} renders figure bytes, got {type(data).__name__}")


class PNGRenderer(_FigureRenderer):
    media_type = CONTENT_TYPES["png"]
    format = "png"


class SVGRenderer(_FigureRenderer):
    media_type = CONTENT_TYPES["svg"]
    format = "svg"


FIGURE_RENDERERS = (PNGRenderer, SVGRenderer)
