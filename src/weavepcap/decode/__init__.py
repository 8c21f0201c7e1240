"""Decoding: raw frame chunks into the columnar packet table (vectorised fast path + per-packet path)."""

from __future__ import annotations

from weavepcap.decode.chunk import DecodedChunk, DecodeState, decode_chunk

__all__ = ["DecodeState", "DecodedChunk", "decode_chunk"]
