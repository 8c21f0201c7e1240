"""Small pcap / pcapng writers for tests and tools: build synthetic captures, optionally compressed."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from weavepcap.io import pcapng_write

# Default capture clock when the caller gives no timestamps: 2026-11-18 (a plausible incident date),
# one frame per millisecond, so microsecond files round-trip exactly.
DEFAULT_START_NS = 1_795_000_000 * 1_000_000_000
DEFAULT_STEP_NS = 1_000_000

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_PB = 0x00000002  # obsolete Packet Block
BLOCK_SPB = 0x00000003
BLOCK_NRB = 0x00000004
BLOCK_EPB = 0x00000006

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_HARDWARE = 2
SHB_OS = 3
SHB_USERAPPL = 4
IF_NAME = 2
IF_TSRESOL = 9
IF_TSOFFSET = 14

COMPRESSIONS = ("gzip", "bzip2", "xz", "zstd")


@dataclass(frozen=True)
class WriterInterface:
    """One pcapng interface to write: link type and the raw `if_tsresol` byte (6 = us, 9 = ns, 0x80|n = 2^-n s)."""

    linktype: int = 1
    tsresol: int = 6
    name: str = ""
    snaplen: int = 262144
    tsoffset_s: int = 0  # if_tsoffset: seconds added to every timestamp of this interface
    comment: str = ""

    def units_per_second(self) -> int:
        if self.tsresol & 0x80:
            return 1 << (self.tsresol & 0x7F)
        return 10 ** self.tsresol


def _default_ts(n: int) -> list[int]:
    return [DEFAULT_START_NS + i * DEFAULT_STEP_NS for i in range(n)]


def _endian(big_endian: bool) -> str:
    return ">" if big_endian else "<"


def pcap_bytes(
    frames: Sequence[bytes],
    linktype: int = 1,
    nanosecond: bool = False,
    big_endian: bool = False,
    *,
    ts_ns: Sequence[int] | None = None,
    wirelen: Sequence[int] | None = None,
    snaplen: int = 262144,
) -> bytes:
    """A whole classic pcap file in memory (timestamps are truncated to the file's resolution)."""
    e = _endian(big_endian)
    stamps = list(ts_ns) if ts_ns is not None else _default_ts(len(frames))
    lengths = list(wirelen) if wirelen is not None else [len(f) for f in frames]
    magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    record = struct.Struct(e + "IIII")
    for frame, ts, wire in zip(frames, stamps, lengths, strict=True):
        seconds, rest_ns = divmod(int(ts), 1_000_000_000)
        fraction = rest_ns if nanosecond else rest_ns // 1000
        out.append(record.pack(seconds, fraction, len(frame), wire))
        out.append(bytes(frame))
    return b"".join(out)


def _options(e: str, options: Sequence[tuple[int, bytes]]) -> bytes:
    return pcapng_write.options(options, e)


def pcapng_block(block_type: int, body: bytes, big_endian: bool = False) -> bytes:
    """One pcapng block: type, total length, body padded to 32 bits, total length again."""
    return pcapng_write.block(block_type, body, _endian(big_endian))


def pcapng_bytes(
    frames: Sequence[bytes],
    linktype: int = 1,
    nanosecond: bool = False,
    big_endian: bool = False,
    *,
    ts_ns: Sequence[int] | None = None,
    wirelen: Sequence[int] | None = None,
    interfaces: Sequence[WriterInterface] | None = None,
    iface: Sequence[int] | None = None,
    block: str | Sequence[str] = "epb",
    shb_hardware: str = "",
    shb_os: str = "",
    shb_userappl: str = "",
    shb_comment: str = "",
) -> bytes:
    """One pcapng section in memory: SHB, one IDB per interface, then one packet block per frame.

    `interfaces` defaults to a single interface of `linktype` (ns resolution when `nanosecond`);
    `iface` gives each frame's interface index; `block` is "epb", "spb" or "pb" for all frames or per
    frame (an SPB has no timestamp and belongs to interface 0). Concatenate two results for a
    multi-section file.
    """
    e = _endian(big_endian)
    n = len(frames)
    ifaces = list(interfaces) if interfaces else [WriterInterface(linktype, 9 if nanosecond else 6)]
    stamps = list(ts_ns) if ts_ns is not None else _default_ts(n)
    lengths = list(wirelen) if wirelen is not None else [len(f) for f in frames]
    owners = list(iface) if iface is not None else [0] * n
    kinds = [block] * n if isinstance(block, str) else list(block)

    shb_opts = [
        (code, text.encode())
        for code, text in ((SHB_HARDWARE, shb_hardware), (SHB_OS, shb_os), (SHB_USERAPPL, shb_userappl),
                           (OPT_COMMENT, shb_comment))
        if text
    ]
    out = [pcapng_block(BLOCK_SHB, struct.pack(e + "IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1)
                        + _options(e, shb_opts), big_endian)]
    for itf in ifaces:
        opts: list[tuple[int, bytes]] = []
        if itf.comment:
            opts.append((OPT_COMMENT, itf.comment.encode()))
        if itf.name:
            opts.append((IF_NAME, itf.name.encode()))
        if itf.tsresol != 6:
            opts.append((IF_TSRESOL, bytes([itf.tsresol])))
        if itf.tsoffset_s:
            opts.append((IF_TSOFFSET, struct.pack(e + "q", itf.tsoffset_s)))
        body = struct.pack(e + "HHI", itf.linktype, 0, itf.snaplen) + _options(e, opts)
        out.append(pcapng_block(BLOCK_IDB, body, big_endian))

    for frame, ts, wire, owner, kind in zip(frames, stamps, lengths, owners, kinds, strict=True):
        frame = bytes(frame)
        if kind == "spb":
            out.append(pcapng_block(BLOCK_SPB, struct.pack(e + "I", wire) + frame, big_endian))
            continue
        itf = ifaces[owner]
        units = (int(ts) - itf.tsoffset_s * 1_000_000_000) * itf.units_per_second() // 1_000_000_000
        high, low = units >> 32, units & 0xFFFFFFFF
        if kind == "epb":
            head = struct.pack(e + "IIIII", owner, high, low, len(frame), wire)
            out.append(pcapng_block(BLOCK_EPB, head + frame, big_endian))
        elif kind == "pb":
            head = struct.pack(e + "HHIIII", owner, 0, high, low, len(frame), wire)
            out.append(pcapng_block(BLOCK_PB, head + frame, big_endian))
        else:
            raise ValueError(f"unknown pcapng block kind {kind!r} (epb, spb or pb)")
    return b"".join(out)


def compress(data: bytes, compression: str | None) -> bytes:
    """Compress whole-file bytes with one of COMPRESSIONS (None or "" leaves them as they are)."""
    if not compression:
        return data
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "bzip2":
        return bz2.compress(data)
    if compression == "xz":
        return lzma.compress(data)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(f"unknown compression {compression!r} (one of {', '.join(COMPRESSIONS)})")


def write_pcap(
    path: str | Path,
    frames: Sequence[bytes],
    linktype: int = 1,
    nanosecond: bool = False,
    big_endian: bool = False,
    *,
    ts_ns: Sequence[int] | None = None,
    wirelen: Sequence[int] | None = None,
    snaplen: int = 262144,
    compression: str | None = None,
) -> Path:
    """Write a classic pcap file (timestamps default to DEFAULT_START_NS + 1 ms per frame)."""
    data = pcap_bytes(frames, linktype, nanosecond, big_endian, ts_ns=ts_ns, wirelen=wirelen, snaplen=snaplen)
    target = Path(path)
    target.write_bytes(compress(data, compression))
    return target


def write_pcapng(
    path: str | Path,
    frames: Sequence[bytes],
    linktype: int = 1,
    nanosecond: bool = False,
    big_endian: bool = False,
    *,
    ts_ns: Sequence[int] | None = None,
    wirelen: Sequence[int] | None = None,
    interfaces: Sequence[WriterInterface] | None = None,
    iface: Sequence[int] | None = None,
    block: str | Sequence[str] = "epb",
    shb_hardware: str = "",
    shb_os: str = "",
    shb_userappl: str = "",
    shb_comment: str = "",
    compression: str | None = None,
) -> Path:
    """Write a one-section pcapng file; see pcapng_bytes for the arguments."""
    data = pcapng_bytes(
        frames, linktype, nanosecond, big_endian, ts_ns=ts_ns, wirelen=wirelen, interfaces=interfaces,
        iface=iface, block=block, shb_hardware=shb_hardware, shb_os=shb_os, shb_userappl=shb_userappl,
        shb_comment=shb_comment,
    )
    target = Path(path)
    target.write_bytes(compress(data, compression))
    return target
