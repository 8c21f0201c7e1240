"""A tiny classic-pcap rewriter: copies a capture with every record timestamp moved by a fixed offset."""

from __future__ import annotations

import struct
from pathlib import Path

MAGICS = {  # magic as read little-endian -> (byte order, ticks per second)
    0xA1B2C3D4: ("<", 1_000_000),
    0xA1B23C4D: ("<", 1_000_000_000),
    0xD4C3B2A1: (">", 1_000_000),
    0x4D3CB2A1: (">", 1_000_000_000),
}


def shift(src: Path, dst: Path, offset_s: float, max_records: int = 10_000_000) -> int:
    """Write `dst` = `src` with timestamps + offset_s; returns the number of records rewritten."""
    data = src.read_bytes()
    if len(data) < 24:
        raise ValueError(f"{src}: too short for a pcap header")
    (magic,) = struct.unpack("<I", data[:4])
    if magic not in MAGICS:
        raise ValueError(f"{src}: not a classic pcap file (magic {magic:#x})")
    order, ticks = MAGICS[magic]
    offset_ticks = round(offset_s * ticks)
    out = bytearray(data[:24])
    pos, count = 24, 0
    while pos + 16 <= len(data) and count < max_records:
        sec, frac, incl, orig = struct.unpack(order + "IIII", data[pos : pos + 16])
        total = sec * ticks + frac + offset_ticks
        out += struct.pack(order + "IIII", total // ticks, total % ticks, incl, orig)
        out += data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        count += 1
    dst.write_bytes(bytes(out))
    return count
