"""Adapters that let faust topics (used by free-form agents) speak streamflow codecs.

Example:
    >>> from streamflow.codecs import StrCodec
    >>> from streamflow.runtime.faust_codecs import faust_serializer
    >>> faust_serializer(StrCodec()).startswith("streamflow-")
    True
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs as faust_codecs

from streamflow.codecs import Codec

__all__ = ["faust_serializer"]


class _FaustCodec(faust_codecs.Codec):
    """A faust codec delegating to a streamflow codec."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec

    def _dumps(self, obj: Any) -> bytes:
        return self.codec.encode(obj)

    def _loads(self, data: bytes) -> Any:
        return self.codec.decode(data)


def faust_serializer(codec: Codec) -> str:
    """Register ``codec`` with faust and return the serializer name faust topics take."""
    name = f"streamflow-{id(codec):x}"
    if name not in faust_codecs.codecs:
        faust_codecs.register(name, _FaustCodec(codec))
    return name
