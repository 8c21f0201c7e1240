"""Open a capture (pcap or pcapng, compressed or not, file or stdin) and stream its frames in bounded chunks."""

from __future__ import annotations

import bz2
import gzip
import lzma
import mmap
import os
import stat
import struct
import sys
import zlib
from collections.abc import Generator, Iterator
from typing import BinaryIO, Protocol

import numpy as np

from weavepcap.errors import CaptureError
from weavepcap.io import pcap, pcapng
from weavepcap.io.records import CaptureInfo, CaptureSpec, Damage, FrameChunk
from weavepcap.settings import DEFAULT_SETTINGS, Settings

STDIN = "-"

# Compression is recognised by the first bytes of the content, never by the file name.
_COMPRESSION_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

# Link types the decoder understands; frames of any other link type are kept but opaque.
KNOWN_LINKTYPES = {
    0: "NULL",
    1: "ETHERNET",
    12: "RAW",
    101: "RAW",
    108: "LOOP",
    113: "LINUX_SLL",
    228: "IPV4",
    229: "IPV6",
    276: "LINUX_SLL2",
}

_MIN_CHUNK_BYTES = 4096


def _decompression_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, EOFError, zlib.error, lzma.LZMAError, ValueError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - zstandard is a dependency
        pass
    return tuple(errors)


_READ_ERRORS = _decompression_errors()


class _Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...

    def close(self) -> None: ...


class _Prefixed:
    """A raw stream whose first bytes were already read (to sniff the format) and are served again first."""

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        self._prefix = prefix
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0:
                out, self._prefix = self._prefix + self._raw.read(), b""
                return out
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            if len(out) < size:
                out += self._raw.read(size - len(out)) or b""
            return out
        return self._raw.read(size)

    def readinto(self, buffer: memoryview) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        got = self._raw.readinto(buffer)
        return got or 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._raw is not sys.stdin.buffer:
            self._raw.close()


def _open_raw(path: str) -> BinaryIO:
    if path == STDIN:
        return sys.stdin.buffer
    if os.path.isdir(path):
        raise CaptureError(path, "is a directory, not a capture file")
    try:
        return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by Capture
    except OSError as exc:
        raise CaptureError(path, f"cannot open: {exc.strerror or exc}") from None


def _read_some(raw: BinaryIO, size: int) -> bytes:
    """Read up to size bytes, looping over short reads (pipes)."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        part = raw.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _open_stream(path: str) -> tuple[_Readable, _Prefixed, str]:
    """Open path (or stdin), sniff compression from the content; return the decompressed and the raw stream."""
    raw = _open_raw(path)
    try:
        head = _read_some(raw, 6)
    except OSError as exc:
        raise CaptureError(path, f"cannot read: {exc.strerror or exc}") from None
    source = _Prefixed(head, raw)
    compression = next((name for magic, name in _COMPRESSION_MAGICS if head.startswith(magic)), "")
    stream: _Readable
    if compression == "gzip":
        stream = gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[arg-type]
    elif compression == "bzip2":
        stream = bz2.BZ2File(source, mode="rb")  # type: ignore[arg-type]
    elif compression == "xz":
        stream = lzma.LZMAFile(source, mode="rb")  # type: ignore[arg-type]
    elif compression == "zstd":
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
    else:
        stream = source
    return stream, source, compression


_COMPRESSED_READ_STEP = 8 * 1024


class Capture:
    """An opened capture: `info` is filled from the header at once; `chunks()` streams the frames."""

    def __init__(self, spec: CaptureSpec, settings: Settings = DEFAULT_SETTINGS) -> None:
        self.spec = spec
        self.settings = settings
        self.chunk_bytes = max(_MIN_CHUNK_BYTES, int(settings.chunk_bytes))
        # Per-frame arrays cost ~44 bytes a frame; capping frames per chunk keeps them below the buffer size.
        self.max_frames = max(1024, self.chunk_bytes // 48)
        path = spec.path
        name = "<stdin>" if path == STDIN else os.path.basename(path.rstrip("/")) or path
        self.info = CaptureInfo(path=path, name=name, host=spec.host)
        self._stream: _Readable | None = None
        self._source: _Prefixed | None = None
        self._started = False
        self._linktypes_noted: set[int] = set()
        self._open()

    # --- opening -----------------------------------------------------------------------------------
    def _open(self) -> None:
        stream, source, compression = _open_stream(self.spec.path)
        self._stream = stream
        self._source = source  # decompressors do not close the file they were given
        self._pending_error: str | None = None
        self.info.compression = compression
        head, error = self._read_exactly(stream, 4)
        if error is not None and not head:
            self._fail(f"cannot read {compression or 'the'} stream: {error}", 0)
        if not head:
            self._fail("empty file: not a pcap or pcapng capture", 0)
        if pcap.is_pcap(head):
            rest, error = self._read_exactly(stream, pcap.PCAP_HEADER_LEN - 4)
            head += rest
            if len(head) < pcap.PCAP_HEADER_LEN:
                self._fail(f"truncated pcap global header ({len(head)} of {pcap.PCAP_HEADER_LEN} bytes)", 0)
            header = pcap.parse_header(head)
            self._walker: pcap.PcapWalker | pcapng.PcapngWalker = pcap.PcapWalker(header, self.max_frames)
            self.info.format = "pcap"
            self.info.byte_order = header.byte_order
            self.info.ts_precision = header.precision
            self.info.interfaces = self._walker.interfaces()
            self._tail = b""
            self._tail_offset = pcap.PCAP_HEADER_LEN
        elif pcapng.is_pcapng(head):
            self.info.format = "pcapng"
            self.info.interfaces = []
            self._walker = pcapng.PcapngWalker(self.info, self.max_frames)
            self._tail = head
            self._tail_offset = 0
            self._read_pcapng_preamble(stream)
        else:
            self._fail(f"not a pcap or pcapng capture (starts with {head.hex()})", 0)

    def _read_pcapng_preamble(self, stream: _Readable) -> None:
        """Read the first blocks so `info` has byte order, SHB options and interfaces before chunks()."""
        more, self._pending_error = self._read_exactly(stream, 65536)
        self._tail += more
        assert isinstance(self._walker, pcapng.PcapngWalker)
        try:
            self._walker.peek_section(self._tail)
        except pcapng.PcapngError as exc:
            self._fail(str(exc), 0)
        # Walk the preamble with a scratch walker to learn the first interfaces; chunks() walks it again.
        scratch = CaptureInfo(path=self.info.path, name=self.info.name, host=self.info.host)
        pcapng.PcapngWalker(scratch, self.max_frames).walk(
            np.frombuffer(self._tail, dtype=np.uint8), 0, len(self._tail), 1, 0)
        self.info.interfaces = scratch.interfaces
        self.info.ts_precision = scratch.ts_precision
        self.info.host = scratch.host

    def _fail(self, message: str, offset: int | None, frame: int | None = None) -> None:
        self.close()
        raise CaptureError(self.info.path, self._where(message), offset=offset, frame=frame)

    def _where(self, message: str) -> str:
        if self.info.compression:
            return f"{message} (offsets are in the decompressed {self.info.compression} stream)"
        return message

    def _read_exactly(self, stream: _Readable, size: int) -> tuple[bytes, str | None]:
        buf = bytearray(size)
        got, error = self._fill(stream, memoryview(buf))
        return bytes(buf[:got]), error

    def _fill(self, stream: _Readable, view: memoryview) -> tuple[int, str | None]:
        """Fill view from stream; returns bytes read and, at a read/decompression error, its message."""
        got = 0
        size = len(view)
        # A decompressor that hits corrupt or cut-short input drops what it had decompressed in that
        # call, so compressed input is read in small steps: at most one step is lost to the damage.
        step = _COMPRESSED_READ_STEP if self.info.compression else size
        try:
            while got < size:
                n = stream.readinto(view[got : got + step])
                if not n:
                    break
                got += n
        except _READ_ERRORS as exc:
            return got, str(exc) or type(exc).__name__
        return got, None

    # --- streaming ---------------------------------------------------------------------------------
    def chunks(self) -> Iterator[FrameChunk]:
        """Yield the frames as bounded FrameChunks; damage goes to info.damage, nothing-readable raises."""
        if self._started:
            if self.spec.path == STDIN:
                raise CaptureError(self.info.path, "standard input can be read only once")
            self.info.damage.clear()
            self._linktypes_noted.clear()
            self._open()
        self._started = True
        fd = self._mappable_fd()
        if fd is not None:
            yield from self._mapped_chunks(fd)
            return
        stream = self._stream
        assert stream is not None
        tail, offset = self._tail, self._tail_offset
        self._tail = b""
        next_frame = 1
        need = 0
        # a read error met while sniffing the header ends the stream where the sniffed bytes end
        error: str | None = self._pending_error
        stream_done = error is not None
        if self.info.format == "pcapng":
            self.info.interfaces = []  # the walk adds them again, in file order
        try:
            while True:
                size = max(self.chunk_bytes, len(tail) + need)
                # numpy.empty, not bytearray: no zero-filling, and freed buffers are reused (5x faster reads).
                buf = np.empty(size, dtype=np.uint8)
                if tail:
                    buf[: len(tail)] = np.frombuffer(tail, dtype=np.uint8)
                got = 0
                if not stream_done:
                    got, error = self._fill(stream, memoryview(buf)[len(tail):])
                    stream_done = error is not None or len(tail) + got < size
                end = len(tail) + got
                del tail
                walked = yield from self._walk_buffer(buf, 0, end, offset, next_frame)
                if walked is None:
                    return
                start, need, next_frame = walked
                tail = buf[start:end].tobytes()
                offset += start
                del buf
                if not stream_done:
                    continue
                if error is not None:
                    message = f"corrupt {self.info.compression} data: {error}; reading stopped there"
                    self._damage(Damage(message, frame=next_frame, offset=offset + len(tail)), next_frame)
                elif tail:
                    self._damage(self._walker.cut_short(tail, next_frame, offset), next_frame)
                return
        finally:
            self.close()

    def _mappable_fd(self) -> int | None:
        """The descriptor of an uncompressed classic pcap in a regular file (read through mmap), else None."""
        if self.info.format != "pcap" or self.info.compression or self._source is None:
            return None
        raw = self._source._raw
        if raw is sys.stdin.buffer:
            return None
        try:
            fd = raw.fileno()
            return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except (OSError, ValueError):
            return None

    def _mapped_chunks(self, fd: int) -> Iterator[FrameChunk]:
        """Walk the file through read-only mmap windows of about chunk_bytes: no copy into a buffer.

        Each chunk's `data` is a view of its window, which stays mapped while any chunk of it is alive
        and is unmapped when the last one goes: memory stays bounded by the windows in use.
        """
        try:
            size = os.fstat(fd).st_size
            pos, next_frame, need = self._tail_offset, 1, 0
            while True:
                base = pos - pos % mmap.ALLOCATIONGRANULARITY
                length = min(size - base, max(self.chunk_bytes, need) + (pos - base))
                if length <= pos - base:  # nothing left after pos
                    return
                window = mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=base)
                if hasattr(mmap, "MADV_SEQUENTIAL"):
                    window.madvise(mmap.MADV_SEQUENTIAL)
                buf = np.frombuffer(window, dtype=np.uint8)
                del window  # the views keep it mapped; unmapped with the last of them
                walked = yield from self._walk_buffer(buf, pos - base, length, base, next_frame)
                if walked is None:
                    return
                start, need, next_frame = walked
                pos = base + start
                if base + length >= size:
                    size = os.fstat(fd).st_size  # a capture still being written may have grown, as with read()
                if base + length >= size:  # the window reached the end of the file
                    if pos < size:
                        tail = buf[start:length].tobytes()
                        self._damage(self._walker.cut_short(tail, next_frame, pos), next_frame)
                    return
                del buf
        except OSError as exc:
            self._fail(f"cannot read: {exc.strerror or exc}", None)
        finally:
            self.close()

    def _walk_buffer(self, buf: np.ndarray, start: int, end: int, base: int,
                     next_frame: int) -> Generator[FrameChunk, None, tuple[int, int, int] | None]:
        """Walk the records of buf[start:end] (buf[0] is at file offset base), yielding chunks.

        Returns (where the walk stopped, bytes the next record needs, next frame number), or None
        when damage ended the capture.
        """
        while True:  # again from where it stopped whenever a chunk filled up
            try:
                walk = self._walker.walk(buf, start, end, next_frame, base)
            except (struct.error, IndexError, ValueError, OverflowError) as exc:
                # A safety net: a walker bug on odd bytes must end in damage, not a traceback.
                self._damage(Damage(f"unreadable data ({exc}): reading stopped there",
                                    frame=next_frame, offset=base + start), next_frame)
                return None
            if walk.chunk is not None:
                self._note_linktypes(walk.chunk)
                yield walk.chunk
                next_frame += walk.frames
            if walk.damage is not None:
                self._damage(walk.damage, next_frame)
                return None
            start = walk.consumed
            if not walk.more:
                return start, walk.need, next_frame

    def _damage(self, damage: Damage, next_frame: int) -> None:
        if next_frame == 1:
            self._fail(damage.message, damage.offset, None)
        damage.message = self._where(damage.message)
        self.info.damage.append(damage)

    def _note_linktypes(self, chunk: FrameChunk) -> None:
        """Note once per link type the decoder does not know: its frames are read but stay opaque."""
        candidates = {i.linktype for i in self.info.interfaces} - self._linktypes_noted - KNOWN_LINKTYPES.keys()
        for value in sorted(candidates):
            hits = np.flatnonzero(chunk.linktype == pcap.linktype_column(value))
            if hits.size:
                self._linktypes_noted.add(value)
                self.info.damage.append(Damage(
                    f"link type {value} is not decoded: its frames are kept as opaque",
                    frame=int(chunk.frame[hits[0]]), stopped_reading=False))

    def close(self) -> None:
        for stream in (self._stream, self._source):
            if stream is not None:
                try:
                    stream.close()
                except _READ_ERRORS:
                    pass
        self._stream = self._source = None

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_capture(spec: CaptureSpec | str, settings: Settings = DEFAULT_SETTINGS) -> Capture:
    """Open a capture named by a CaptureSpec (or a `PATH` / `HOST=PATH` / `-` string)."""
    if isinstance(spec, str):
        spec = CaptureSpec.parse(spec)
    return Capture(spec, settings)
