"""pcapng block walker (placeholder until the full walker lands)."""

from __future__ import annotations

from typing import Any


class PcapngError(Exception):
    pass


def is_pcapng(head: bytes) -> bool:
    return head[:4] == b"\x0a\x0d\x0d\x0a"


class PcapngWalker:
    def __init__(self, info: Any, max_frames: int) -> None:
        raise PcapngError("pcapng reading is not available yet")
