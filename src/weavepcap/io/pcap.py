"""Classic libpcap record walker: global header, then record headers walked into columnar FrameChunks."""

from __future__ import annotations

import struct
from array import array
from itertools import repeat
from typing import NamedTuple

import numpy as np

from weavepcap.io.records import Damage, FrameChunk, Interface

PCAP_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
# libpcap's own ceiling is 262144 bytes per frame; allow 4x before calling a length impossible.
MAX_CAPLEN = 262144 * 4
INT32_MAX = 2**31 - 1
CACHE_LINE = 64
PREFETCH_BYTES = 256 * 1024  # walked from the L2 cache after one sequential pass

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("little", "us"),
    b"\xa1\xb2\xc3\xd4": ("big", "us"),
    b"\x4d\x3c\xb2\xa1": ("little", "ns"),
    b"\xa1\xb2\x3c\x4d": ("big", "ns"),
}


def is_pcap(head: bytes) -> bool:
    return head[:4] in _MAGICS


def u32_at(buf: np.ndarray, end: int, dtype: np.dtype) -> np.ndarray:
    """An overlapping, unaligned uint32 view of buf[0:end]: element p is the 32-bit word at byte p."""
    if end < 4:
        return np.zeros(0, dtype=dtype)
    return np.ndarray(shape=(end - 3,), dtype=dtype, buffer=buf, offset=0, strides=(1,))


def linktype_column(linktype: int) -> int:
    """The int16 `linktype` column value: the link type, or -1 when it does not fit (no real one is that big)."""
    return linktype if 0 <= linktype <= 32767 else -1


class PcapHeader(NamedTuple):
    byte_order: str  # "little" | "big"
    precision: str  # "us" | "ns"
    snaplen: int
    linktype: int


def parse_header(head: bytes) -> PcapHeader:
    """Parse the 24-byte global header (the caller checked the magic and the length)."""
    byte_order, precision = _MAGICS[head[:4]]
    e = "<" if byte_order == "little" else ">"
    _major, _minor, _zone, _sigfigs, snaplen, linktype_field = struct.unpack_from(e + "HHiIII", head, 4)
    # The upper bits of the link-type field carry FCS length flags; the link type is the low 16 bits.
    return PcapHeader(byte_order, precision, snaplen, linktype_field & 0xFFFF)


class Walk(NamedTuple):
    """What one pass over a buffer produced: frames, how far it got, and why it stopped."""

    chunk: FrameChunk | None
    consumed: int  # buffer position of the first record not taken
    need: int  # bytes the next record needs from `consumed` (0: nothing pending)
    damage: Damage | None  # set when the walk stopped at damage found at `consumed`
    frames: int  # frames in `chunk`
    more: bool = False  # stopped at the frame budget: whole records may follow in the buffer


class PcapWalker:
    """Walks classic pcap records; one instance per capture (it knows the byte order and resolution)."""

    def __init__(self, header: PcapHeader, max_frames: int) -> None:
        self.header = header
        self.max_frames = max_frames
        self.little = header.byte_order == "little"
        self._caplen = struct.Struct("<I" if self.little else ">I")
        self._u32 = np.dtype("<u4" if self.little else ">u4")
        self._ns_per_unit = 1 if header.precision == "ns" else 1000

    def interfaces(self) -> list[Interface]:
        return [Interface(self.header.linktype, float(self._ns_per_unit), "", self.header.snaplen)]

    def walk(self, buf: np.ndarray, start: int, end: int, first_frame: int, stream_offset: int) -> Walk:
        """Take whole records from buf[start:end]; stream_offset is buf[0]'s offset in the (decompressed) stream."""
        view = memoryview(buf)  # struct reads a memoryview twice as fast as an ndarray
        unpack_caplen = self._caplen.unpack_from
        starts = array("q")
        append = starts.append
        pos = start
        limit = end - RECORD_HEADER_LEN
        # The only per-frame Python on the hot path: hop from record header to record header. Each hop
        # depends on the last, so from DRAM it waits on memory: one sequential pass over the next piece's
        # cache lines first (prefetched by the hardware) brings them into L2, and the hops run from there
        # (215 -> 118 ns per frame). The loop body is kept minimal: only the last record taken can run
        # past `end`; it is given back below.
        lines = buf[:end:CACHE_LINE]
        taken = 0
        while pos <= limit and taken < self.max_frames:
            stop = min(pos + PREFETCH_BYTES, limit)
            lines[pos // CACHE_LINE : stop // CACHE_LINE + 2].max()
            for _ in repeat(None, self.max_frames - taken):
                if pos > stop:
                    break
                append(pos)
                pos += RECORD_HEADER_LEN + unpack_caplen(view, pos + 8)[0]
            taken = len(starts)
        if pos > end:
            pos = starts.pop()

        positions = np.frombuffer(starts, dtype=np.int64) if len(starts) else np.zeros(0, dtype=np.int64)
        data = buf[:end]
        words = u32_at(buf, end, self._u32)
        seconds, fraction = words[positions], words[positions + 4]
        caplen, wire = words[positions + 8].astype(np.int64), words[positions + 12]
        damage = None
        bad = np.flatnonzero(caplen > MAX_CAPLEN)
        if bad.size:
            cut = int(bad[0])
            pos = int(positions[cut])
            damage = self._impossible(int(caplen[cut]), first_frame + cut, stream_offset + pos)
            positions, caplen = positions[:cut], caplen[:cut]
            seconds, fraction, wire = seconds[:cut], fraction[:cut], wire[:cut]
        need = 0
        more = False
        if damage is None and len(positions) >= self.max_frames:
            more = True
        elif damage is None and pos <= limit:
            claimed = self._caplen.unpack_from(view, pos + 8)[0]
            if claimed > MAX_CAPLEN:
                damage = self._impossible(claimed, first_frame + len(positions), stream_offset + pos)
            else:
                need = RECORD_HEADER_LEN + claimed
        elif damage is None and pos < end:
            need = RECORD_HEADER_LEN

        n = len(positions)
        if n == 0:
            return Walk(None, pos, need, damage, 0, more)
        ts_ns = seconds.astype(np.int64) * 1_000_000_000 + fraction.astype(np.int64) * self._ns_per_unit
        chunk = FrameChunk(
            data=data,
            offsets=positions + RECORD_HEADER_LEN,
            caplen=caplen.astype(np.int32),
            wirelen=np.minimum(wire, INT32_MAX).astype(np.int32),
            ts_ns=ts_ns,
            linktype=np.full(n, linktype_column(self.header.linktype), dtype=np.int16),
            iface=np.zeros(n, dtype=np.int16),
            frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
            file_offset=positions + stream_offset,
        )
        return Walk(chunk, pos, need, damage, n, more)

    def _impossible(self, caplen: int, frame: int, offset: int) -> Damage:
        return Damage(f"record header claims {caplen} captured bytes (more than {MAX_CAPLEN}): "
                      "reading stopped there", frame=frame, offset=offset)

    def cut_short(self, tail: bytes, frame: int, offset: int) -> Damage:
        """Damage for bytes left at the end of the stream that do not make a whole record."""
        if len(tail) < RECORD_HEADER_LEN:
            return Damage(f"capture cut short: {len(tail)} stray bytes of a partial record header at the end",
                          frame=frame, offset=offset)
        claimed = self._caplen.unpack_from(tail, 8)[0]
        return Damage(f"capture cut short in the middle of a packet: record claims {claimed} bytes, "
                      f"{len(tail) - RECORD_HEADER_LEN} present", frame=frame, offset=offset)
