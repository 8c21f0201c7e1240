"""pcapng block encoding (little-endian): section header, interfaces, enhanced packet blocks with comments."""

from __future__ import annotations

import struct
from collections.abc import Sequence

BYTE_ORDER_MAGIC = 0x1A2B3C4D
BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_EPB = 0x00000006
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
TSRESOL_NS = 9  # if_tsresol: 10^-9 s units


def options(entries: Sequence[tuple[int, bytes]], endian: str = "<") -> bytes:
    """An option list (each value padded to 32 bits) ending in opt_endofopt; empty when there is none."""
    if not entries:
        return b""
    parts = [struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4) for code, value in entries]
    parts.append(struct.pack(endian + "HH", OPT_ENDOFOPT, 0))
    return b"".join(parts)


def block(block_type: int, body: bytes, endian: str = "<") -> bytes:
    """One block: type, total length, body padded to 32 bits, total length again."""
    padded = body + b"\0" * (-len(body) % 4)
    total = 12 + len(padded)
    return struct.pack(endian + "II", block_type, total) + padded + struct.pack(endian + "I", total)


def section_header(application: str = "", comment: str = "") -> bytes:
    opts = [(SHB_USERAPPL, application.encode())] if application else []
    if comment:
        opts.append((OPT_COMMENT, comment.encode()))
    return block(BLOCK_SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + options(opts))


def interface(linktype: int, *, name: str = "", description: str = "", snaplen: int = 0) -> bytes:
    """An interface with nanosecond timestamps."""
    opts = [(IF_NAME, name.encode())] if name else []
    if description:
        opts.append((IF_DESCRIPTION, description.encode()))
    opts.append((IF_TSRESOL, bytes([TSRESOL_NS])))
    return block(BLOCK_IDB, struct.pack("<HHI", linktype, 0, snaplen) + options(opts))


def enhanced_packet(interface_id: int, ts_ns: int, data: bytes, wirelen: int, comments: Sequence[str] = ()) -> bytes:
    units = max(int(ts_ns), 0)
    head = struct.pack("<IIIII", interface_id, units >> 32, units & 0xFFFFFFFF, len(data), wirelen)
    padded = data + b"\0" * (-len(data) % 4)
    return block(BLOCK_EPB, head + padded + options([(OPT_COMMENT, c.encode()) for c in comments]))
