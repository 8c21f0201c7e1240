"""Data types that leave the io layer: capture specs, capture info, damage notes and chunks of raw frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CaptureSpec:
    """A capture named on the command line: `PATH`, `HOST=PATH` or `-` (standard input)."""

    path: str
    host: str | None = None  # None: derive from pcapng metadata, else the file name
    # The file name's host part, chosen by naming.infer_file_hosts with the other captures in view.
    file_host: str | None = None
    file_host_named_by: str = ""

    @classmethod
    def parse(cls, text: str) -> CaptureSpec:
        """Split `HOST=PATH`; a bare path (or one whose `=` part looks like a path) has no host."""
        if "=" in text and not text.startswith(("/", "./", "../")):
            host, _, path = text.partition("=")
            if host and path and "/" not in host:
                return cls(path=path, host=host)
        return cls(path=text)


@dataclass
class Damage:
    """Something wrong in a capture: where (frame and/or byte offset) and what."""

    message: str
    frame: int | None = None
    offset: int | None = None
    stopped_reading: bool = True  # False for notes on frames that were all read (odd link type, SPB times)

    def to_dict(self) -> dict[str, object]:
        return {"frame": self.frame, "offset": self.offset, "message": self.message}


@dataclass
class Interface:
    """One capture interface (pcapng IDB; classic pcap has exactly one)."""

    linktype: int
    tsresol_ns: float = 1000.0  # nanoseconds per timestamp unit (1000 = microseconds)
    name: str = ""
    snaplen: int = 0


@dataclass
class CaptureInfo:
    """What the reader learned about a capture file."""

    path: str
    name: str  # display name: file name without directories
    host: str | None  # from the spec, else pcapng SHB/IDB metadata, else None (caller uses the file name)
    format: str = ""  # "pcap" | "pcapng"
    byte_order: str = ""  # "little" | "big"
    ts_precision: str = ""  # "us" | "ns" | "mixed" (pcapng)
    compression: str = ""  # "" | "gzip" | "bzip2" | "xz" | "zstd"
    interfaces: list[Interface] = field(default_factory=list)
    shb_hardware: str = ""
    shb_os: str = ""
    shb_userappl: str = ""
    damage: list[Damage] = field(default_factory=list)  # filled while reading


@dataclass
class FrameChunk:
    """A bounded batch of raw frames, columnar: one flat byte buffer plus per-frame arrays."""

    data: np.ndarray  # uint8: the captured bytes of all frames, back to back
    offsets: np.ndarray  # int64 (n,): start of each frame in `data`
    caplen: np.ndarray  # int32 (n,)
    wirelen: np.ndarray  # int32 (n,)
    ts_ns: np.ndarray  # int64 (n,)
    linktype: np.ndarray  # int16 (n,)
    iface: np.ndarray  # int16 (n,)
    frame: np.ndarray  # int64 (n,): 1-based frame numbers as Wireshark counts them
    file_offset: np.ndarray  # int64 (n,): byte offset of each record header in the (decompressed) stream

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def frame_bytes(self, i: int) -> bytes:
        """The captured bytes of the i-th frame of this chunk (for the per-packet path)."""
        start = int(self.offsets[i])
        return self.data[start : start + int(self.caplen[i])].tobytes()


def chunk_from_frames(
    frames: list[bytes],
    *,
    linktype: int | list[int] = 1,
    ts_ns: list[int] | None = None,
    wirelen: list[int] | None = None,
    first_frame: int = 1,
) -> FrameChunk:
    """Build a FrameChunk from raw frame bytes (tests and tools that make frames by hand)."""
    n = len(frames)
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    offsets = np.zeros(n, dtype=np.int64)
    if n:
        offsets[1:] = np.cumsum(lengths)[:-1]
    data = np.frombuffer(b"".join(frames), dtype=np.uint8).copy()
    lt = [linktype] * n if isinstance(linktype, int) else list(linktype)
    return FrameChunk(
        data=data,
        offsets=offsets,
        caplen=lengths.astype(np.int32),
        wirelen=np.array(wirelen if wirelen is not None else lengths, dtype=np.int32),
        ts_ns=np.array(ts_ns if ts_ns is not None else [i * 1000 for i in range(n)], dtype=np.int64),
        linktype=np.array(lt, dtype=np.int16),
        iface=np.zeros(n, dtype=np.int16),
        frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
        file_offset=np.full(n, -1, dtype=np.int64),
    )
