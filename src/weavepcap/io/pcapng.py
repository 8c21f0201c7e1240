"""pcapng block walker: sections, interfaces and packet blocks (EPB, SPB, obsolete PB) into FrameChunks."""

from __future__ import annotations

import struct
from array import array

import numpy as np

from weavepcap.io.pcap import INT32_MAX, MAX_CAPLEN, Walk, linktype_column, u32_at
from weavepcap.io.records import CaptureInfo, Damage, FrameChunk, Interface

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_PB = 0x00000002
BLOCK_SPB = 0x00000003
BLOCK_EPB = 0x00000006
PACKET_BLOCKS = frozenset({BLOCK_EPB, BLOCK_SPB, BLOCK_PB})
BYTE_ORDER_MAGIC = 0x1A2B3C4D
# A packet block holds at most MAX_CAPLEN bytes plus headers and options; other blocks (name
# resolution, statistics, custom) are small in practice. Anything bigger is treated as damage.
MAX_BLOCK = 16 * 1024 * 1024
MIN_BLOCK = {BLOCK_EPB: 32, BLOCK_PB: 32, BLOCK_SPB: 16, BLOCK_IDB: 20, BLOCK_SHB: 28}
HOST_COMMENT_PREFIXES = ("host=", "host:")


class PcapngError(Exception):
    """The pcapng data cannot be walked at this point (message names the problem)."""


def is_pcapng(head: bytes) -> bool:
    return head[:4] == b"\x0a\x0d\x0d\x0a"


def _options(body: bytes | memoryview, start: int, e: str) -> list[tuple[int, bytes]]:
    """Parse a block's options from body[start:]; a malformed option list ends the list quietly."""
    out: list[tuple[int, bytes]] = []
    pos = start
    end = len(body)
    while pos + 4 <= end:
        code, length = struct.unpack_from(e + "HH", body, pos)
        if code == 0:
            break
        value_end = pos + 4 + length
        if value_end > end:
            break
        out.append((code, bytes(body[pos + 4 : value_end])))
        pos = value_end + (-length % 4)
    return out


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


class _Resolution:
    """Timestamp units of one interface: units per second as 10^k or 2^k, and an offset in seconds."""

    def __init__(self, code: int, offset_s: int) -> None:
        self.power_of_two = bool(code & 0x80)
        self.exponent = code & 0x7F
        # a corrupt if_tsoffset must not overflow int64 nanoseconds: keep it within +-2^32 s
        self.offset_ns = max(-(2**32), min(2**32, offset_s)) * 1_000_000_000

    def tsresol_ns(self) -> float:
        per_second = (1 << self.exponent) if self.power_of_two else 10**self.exponent
        return 1e9 / per_second

    def to_ns(self, units: np.ndarray) -> np.ndarray:
        """uint64 timestamp units -> int64 ns since the epoch."""
        if not self.power_of_two and self.exponent <= 9:
            ns = units.astype(np.int64) * (10 ** (9 - self.exponent))
        elif not self.power_of_two and self.exponent <= 19:
            ns = (units // np.uint64(10 ** (self.exponent - 9))).astype(np.int64)
        elif self.power_of_two and self.exponent <= 32:
            whole = (units >> np.uint64(self.exponent)).astype(np.int64)
            fraction = (units & np.uint64((1 << self.exponent) - 1)).astype(np.int64)
            ns = whole * 1_000_000_000 + ((fraction * 1_000_000_000) >> self.exponent)
        else:  # odd resolutions: exact Python integers, rare enough not to matter for speed
            per_second = (1 << self.exponent) if self.power_of_two else 10**self.exponent
            ns = np.array([int(u) * 1_000_000_000 // per_second for u in units.tolist()], dtype=np.int64)
        return ns + self.offset_ns


class PcapngWalker:
    """Walks pcapng blocks; keeps section state (byte order, interfaces) across chunks."""

    def __init__(self, info: CaptureInfo, max_frames: int) -> None:
        self.info = info
        self.max_frames = max_frames
        self.e = "<"
        self._section_ifaces: list[int] = []  # section-local interface id -> index in info.interfaces
        self._resolutions: list[_Resolution] = []  # per global interface
        self._last_ts = 0
        self._spb_noted = False
        self._sections = 0

    # --- section and interface blocks (rare: plain Python) -----------------------------------------
    def peek_section(self, head: bytes) -> None:
        """Check the first Section Header Block and take its byte order and options into info."""
        if len(head) < 12:
            raise PcapngError(f"truncated pcapng section header ({len(head)} bytes)")
        e = self._byte_order(head, 0)
        length = struct.unpack_from(e + "I", head, 4)[0]
        if length % 4 or length < MIN_BLOCK[BLOCK_SHB] or length > MAX_BLOCK:
            raise PcapngError(f"pcapng section header has an impossible length {length}")
        self.info.byte_order = "little" if e == "<" else "big"
        if len(head) >= length:
            self._read_shb_options(memoryview(head)[:length], e)

    def _byte_order(self, buf: bytes | bytearray | memoryview, pos: int) -> str:
        magic = bytes(buf[pos + 8 : pos + 12])
        if magic == b"\x4d\x3c\x2b\x1a":
            return "<"
        if magic == b"\x1a\x2b\x3c\x4d":
            return ">"
        raise PcapngError(f"pcapng section header has no valid byte-order magic ({magic.hex()})")

    def _read_shb_options(self, block: memoryview, e: str) -> None:
        for code, value in _options(block[: len(block) - 4], 24, e):
            text = _text(value)
            if code == 2 and not self.info.shb_hardware:
                self.info.shb_hardware = text
            elif code == 3 and not self.info.shb_os:
                self.info.shb_os = text
            elif code == 4 and not self.info.shb_userappl:
                self.info.shb_userappl = text
            elif code == 1:
                self._host_from_comment(text)

    def _host_from_comment(self, text: str) -> None:
        """A comment `host=NAME` (SHB or IDB) names the capture host unless the command line did."""
        lowered = text.lower()
        for prefix in HOST_COMMENT_PREFIXES:
            if lowered.startswith(prefix) and self.info.host is None:
                name = text[len(prefix) :].strip()
                if name:
                    self.info.host = name

    def _start_section(self, block: memoryview) -> None:
        self.e = self._byte_order(block, 0)
        self.info.byte_order = "little" if self.e == "<" else "big"
        self._section_ifaces = []
        self._sections += 1
        self._read_shb_options(block, self.e)

    def _add_interface(self, block: memoryview) -> None:
        e = self.e
        linktype, _reserved, snaplen = struct.unpack_from(e + "HHI", block, 8)
        name = ""
        code_tsresol = 6
        offset_s = 0
        for code, value in _options(block[: len(block) - 4], 16, e):
            if code == 2:
                name = _text(value)
            elif code == 9 and value:
                code_tsresol = value[0]
            elif code == 14 and len(value) >= 8:
                offset_s = struct.unpack_from(e + "q", value)[0]
            elif code == 1:
                self._host_from_comment(_text(value))
        resolution = _Resolution(code_tsresol, offset_s)
        self._section_ifaces.append(len(self.info.interfaces))
        self._resolutions.append(resolution)
        self.info.interfaces.append(Interface(linktype, resolution.tsresol_ns(), name, snaplen))
        self._update_precision()

    def _update_precision(self) -> None:
        resolutions = {i.tsresol_ns for i in self.info.interfaces}
        if len(resolutions) > 1:
            self.info.ts_precision = "mixed"
        else:
            only = resolutions.pop()
            self.info.ts_precision = {1000.0: "us", 1.0: "ns"}.get(only, "mixed")

    # --- the walk ----------------------------------------------------------------------------------
    def walk(self, buf: np.ndarray, start: int, end: int, first_frame: int, stream_offset: int) -> Walk:
        """Take whole blocks from buf[start:end]; stream_offset is buf[0]'s offset in the (decompressed) stream."""
        starts = array("q")
        append = starts.append
        pos = start
        budget = self.max_frames
        need = 0
        damage: Damage | None = None
        header = struct.Struct(self.e + "II").unpack_from
        view = memoryview(buf)  # struct reads a memoryview twice as fast as an ndarray
        section_break = False
        # Per-block Python: hop from block header to block header; packet fields are gathered later.
        while budget and pos + 12 <= end:
            block_type, length = header(view, pos)
            if block_type == BLOCK_SHB:
                if starts:
                    section_break = True
                    break  # a new section may switch byte order: finish this chunk first
                try:
                    e = self._byte_order(view, pos)
                except PcapngError as exc:
                    damage = Damage(str(exc), offset=stream_offset + pos)
                    break
                length = struct.unpack_from(e + "I", view, pos + 4)[0]
            nxt = pos + length
            if length < 12 or length % 4 or length > MAX_BLOCK:
                damage = self._bad_length(block_type, length, first_frame + len(starts), stream_offset + pos)
                break
            if nxt > end:
                need = length
                break
            if block_type in PACKET_BLOCKS:
                append(pos)
                budget -= 1
                pos = nxt
                continue
            trailer_e = e if block_type == BLOCK_SHB else self.e
            if struct.unpack_from(trailer_e + "I", view, nxt - 4)[0] != length:
                damage = Damage(f"pcapng block of type 0x{block_type:08x} has a trailing length that does not "
                                f"match its length {length}", offset=stream_offset + pos)
                break
            if length < MIN_BLOCK.get(block_type, 12):
                damage = self._bad_length(block_type, length, None, stream_offset + pos)
                break
            if block_type == BLOCK_SHB:
                self._start_section(view[pos:nxt])
                header = struct.Struct(self.e + "II").unpack_from
            elif block_type == BLOCK_IDB:
                self._add_interface(view[pos:nxt])
            # every other block type (name resolution, statistics, custom, unknown) is skipped
            pos = nxt

        positions = np.frombuffer(starts, dtype=np.int64) if len(starts) else np.zeros(0, dtype=np.int64)
        more = damage is None and need == 0 and (budget == 0 or section_break)
        if damage is None and need == 0 and not more and pos < end and pos + 12 > end:
            need = 12
        chunk, bad = self._gather(buf, end, positions, first_frame, stream_offset)
        if bad is not None:
            cut, bad_damage = bad
            pos = int(positions[cut])
            damage, need, more = bad_damage, 0, False
        n = 0 if chunk is None else len(chunk)
        return Walk(chunk, pos, need, damage, n, more)

    def _bad_length(self, block_type: int, length: int, frame: int | None, offset: int) -> Damage:
        if block_type not in PACKET_BLOCKS:
            frame = None
        return Damage(f"pcapng block of type 0x{block_type:08x} has an impossible length {length}: "
                      "reading stopped there", frame=frame, offset=offset)

    def _gather(
        self, buf: np.ndarray, end: int, positions: np.ndarray, first_frame: int, stream_offset: int
    ) -> tuple[FrameChunk | None, tuple[int, Damage] | None]:
        """Vectorised: read every packet block's fields, check them, and build the chunk."""
        n = len(positions)
        if n == 0:
            return None, None
        u32 = np.dtype(self.e + "u4")
        data = buf[:end]
        at = u32_at(buf, end, u32)
        block_type = at[positions].astype(np.int64)
        length = at[positions + 4].astype(np.int64)
        trailer = at[positions + length - 4].astype(np.int64)
        is_spb = block_type == BLOCK_SPB
        any_spb = bool(is_spb.any())

        def field(offset: int) -> np.ndarray:
            index = positions + offset
            if any_spb:  # an SPB may be shorter than 28 bytes: stay inside the buffer (the value is unused)
                index = np.minimum(index, end - 4)
            return at[index].astype(np.int64)

        word2 = field(8)
        ts_high, ts_low, caplen, wirelen = field(12), field(16), field(20), field(24)
        is_pb = block_type == BLOCK_PB
        local_iface = word2
        if is_pb.any():  # the obsolete Packet Block has a 16-bit interface id followed by a drop count
            local_iface = np.where(is_pb, (word2 & 0xFFFF) if self.e == "<" else (word2 >> 16), word2)
        offsets = positions + 28
        if any_spb:
            local_iface = np.where(is_spb, 0, local_iface)
            # An SPB holds min(original length, interface 0's snaplen) bytes, then padding.
            spb_caplen = np.minimum(word2, length - 16)
            if self._section_ifaces and self.info.interfaces[self._section_ifaces[0]].snaplen > 0:
                spb_caplen = np.minimum(spb_caplen, self.info.interfaces[self._section_ifaces[0]].snaplen)
            caplen = np.where(is_spb, spb_caplen, caplen)
            wirelen = np.where(is_spb, word2, wirelen)
            offsets = np.where(is_spb, positions + 12, offsets)

        problems: list[tuple[np.ndarray, str]] = [
            (trailer != length, "has a trailing length that does not match its length"),
            (length < np.where(is_spb, 16, 32), "is shorter than its fixed fields"),
            (~is_spb & (caplen > length - 32), "claims more captured bytes than the block holds"),
            (caplen > MAX_CAPLEN, f"claims more than {MAX_CAPLEN} captured bytes"),
            (local_iface >= len(self._section_ifaces), "names an interface that was not defined"),
        ]
        first_bad = n
        message = ""
        for mask, text in problems:
            hits = np.flatnonzero(mask[:first_bad])
            if hits.size:
                first_bad = int(hits[0])
                message = text
        bad = None
        if first_bad < n:
            pos = int(positions[first_bad])
            kind = int(block_type[first_bad])
            bad = (first_bad, Damage(f"pcapng packet block of type {kind} {message}: reading stopped there",
                                     frame=first_frame + first_bad, offset=stream_offset + pos))
            n = first_bad
            if n == 0:
                return None, bad
            positions, caplen, wirelen = positions[:n], caplen[:n], wirelen[:n]
            ts_high, ts_low = ts_high[:n], ts_low[:n]
            offsets, local_iface, is_spb = offsets[:n], local_iface[:n], is_spb[:n]

        section_map = np.array(self._section_ifaces, dtype=np.int64)
        iface = section_map[local_iface]
        linktypes = np.array([linktype_column(i.linktype) for i in self.info.interfaces], dtype=np.int64)
        units = (ts_high.astype(np.uint64) << np.uint64(32)) | ts_low.astype(np.uint64)
        ts_ns = np.zeros(n, dtype=np.int64)
        if len(self._section_ifaces) == 1:
            ts_ns = self._resolutions[self._section_ifaces[0]].to_ns(units)
        else:
            for index in set(self._section_ifaces):
                mask = iface == index
                if mask.any():
                    ts_ns[mask] = self._resolutions[index].to_ns(units[mask])
        if is_spb.any():
            # A Simple Packet Block has no timestamp: it gets the previous packet's time (or 0).
            if not self._spb_noted:
                self._spb_noted = True
                first = first_frame + int(np.flatnonzero(is_spb)[0])
                self.info.damage.append(Damage("simple packet blocks carry no timestamp: each gets the "
                                               "time of the packet before it", frame=first,
                                               stopped_reading=False))
            source = np.where(is_spb, -1, np.arange(n))
            source = np.maximum.accumulate(source)
            ts_ns = np.where(source >= 0, ts_ns[np.maximum(source, 0)], self._last_ts)
        self._last_ts = int(ts_ns[-1])

        chunk = FrameChunk(
            data=data,
            offsets=offsets,
            caplen=caplen.astype(np.int32),
            wirelen=np.minimum(wirelen, INT32_MAX).astype(np.int32),
            ts_ns=ts_ns,
            linktype=linktypes[iface].astype(np.int16),
            iface=iface.astype(np.int16),
            frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
            file_offset=positions + stream_offset,
        )
        return chunk, bad

    def cut_short(self, tail: bytes, frame: int, offset: int) -> Damage:
        """Damage for bytes at the end of the stream that do not make a whole block."""
        if len(tail) < 12:
            return Damage(f"capture cut short: {len(tail)} stray bytes of a partial block header at the end",
                          frame=frame, offset=offset)
        block_type, length = struct.unpack_from(self.e + "II", tail, 0)
        return Damage(f"capture cut short in the middle of a block: block of type 0x{block_type:08x} claims "
                      f"{length} bytes, {len(tail)} present",
                      frame=frame if block_type in PACKET_BLOCKS else None, offset=offset)
