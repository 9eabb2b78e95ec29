"""Binary renderers of the array endpoints: ``.npy`` and ``.npz`` bodies, passed through as is.

The views hand these renderers bytes they have already assembled (the stored ``.npy`` of a
unit, or a zip of several); rendering only returns them. Anything else (an error answer, a
dict) is rendered as JSON by :class:`BinaryAwareMixin`, so a client asking for ``.npy`` still
reads a 404 or 401 as JSON.
"""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

NPY_MEDIA_TYPE = "application/x-npy"
NPZ_MEDIA_TYPE = "application/x-npz"


class BinaryRenderer(BaseRenderer):
    """Bytes in, the same bytes out."""

    charset = None
    render_style = "binary"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, bytearray | memoryview):
            return bytes(data)
        raise TypeError(f"{type(self).__name__} renders bytes only, not {type(data).__name__}")


class NpyRenderer(BinaryRenderer):
    """One NumPy array (``np.load(io.BytesIO(body))``)."""

    media_type = NPY_MEDIA_TYPE
    format = "npy"


class NpzRenderer(BinaryRenderer):
    """Several NumPy arrays in an ``np.savez``-compatible zip (``np.load(io.BytesIO(body))``)."""

    media_type = NPZ_MEDIA_TYPE
    format = "npz"


class BinaryAwareMixin:
    """Viewset mixin: answers that are not bytes (errors) go out as JSON, not as ``.npy``."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        renderer = getattr(request, "accepted_renderer", None)
        if (
            isinstance(response, Response)
            and isinstance(renderer, BinaryRenderer)
            and not isinstance(response.data, bytes | bytearray | memoryview)
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
