"""Capture input: open pcap/pcapng files (compressed or not, or stdin) and stream raw frames in chunks."""

from __future__ import annotations

from weavepcap.io.readers import Capture, open_capture
from weavepcap.io.records import CaptureInfo, CaptureSpec, Damage, FrameChunk, Interface, chunk_from_frames

__all__ = [
    "Capture",
    "open_capture",
    "CaptureInfo", "CaptureSpec", "Damage", "FrameChunk", "Interface", "chunk_from_frames",
]
