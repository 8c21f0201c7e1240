"""decode_chunk: fast path over the chunk, per-packet path for the rest, one packet table either way."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from weavepcap.decode import core
from weavepcap.decode.control import ControlTracker
from weavepcap.decode.fast import FastDecoder
from weavepcap.decode.packet import PacketDecoder
from weavepcap.io.records import FrameChunk
from weavepcap.schema import COLUMN_BY_NAME, PACKET_COLUMNS, empty_columns
from weavepcap.settings import Settings

# columns copied from the chunk itself; every other column is decoded
RECORD_COLUMNS = ("frame", "ts_ns", "caplen", "wirelen", "linktype", "iface")
DECODED_COLUMNS = tuple(c for c in PACKET_COLUMNS if c.name not in RECORD_COLUMNS)
MAX_CONTROL_DIRECTIONS = 4096
# "auto": the compiled core when it was built, else the numpy path; "packet": the per-packet reference only
ENGINES = ("auto", "core", "numpy", "packet")


class DecodeState:
    """What decoding carries from one chunk to the next: the TCP 6783 stream state, bounded."""

    def __init__(self, max_connections: int = MAX_CONTROL_DIRECTIONS) -> None:
        self.control = ControlTracker(max_connections)

    @property
    def evicted_connections(self) -> int:
        """Directions of TCP 6783 connections forgotten because the table was full."""
        return self.control.evicted


@dataclass
class DecodedChunk:
    """The packet-table columns of one chunk, plus the payloads the defragmenter needs."""

    columns: dict[str, np.ndarray]
    fragment_payloads: dict[int, bytes] = field(default_factory=dict)  # frame number -> IP payload bytes
    slow_frames: int = 0  # frames that went through the per-packet path
    errors: list[tuple[int, str]] = field(
        default_factory=list
    )  # (frame, message): decoder bugs, not bad bytes


def _typed(name: str, dtype: np.dtype, values: list[object]) -> np.ndarray:
    """Values for one column in its dtype; a value the dtype cannot hold becomes the missing value."""
    if dtype.kind in "Obu":  # text, flags and 64-bit identifiers always fit
        return np.array(values, dtype=dtype)
    wide = np.array(values, dtype=np.int64)
    limits = np.iinfo(dtype)
    wide[(wide < limits.min) | (wide > limits.max)] = COLUMN_BY_NAME[name].missing
    return wide.astype(dtype)


def decode_chunk(
    chunk: FrameChunk,
    settings: Settings,
    state: DecodeState,
    *,
    force_slow: bool = False,
    engine: str = "auto",
) -> DecodedChunk:
    """Decode every frame of the chunk into PACKET_COLUMNS; never raises on the frames' bytes.

    engine: "auto" (compiled core if built, else numpy), "core", "numpy" or "packet" (force_slow=True).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if force_slow:
        engine = "packet"
    elif engine == "auto":
        engine = "core" if core.available() else "numpy"
    n = len(chunk)
    cols = empty_columns(n)
    cols["frame"][:] = chunk.frame
    cols["ts_ns"][:] = chunk.ts_ns
    cols["caplen"][:] = chunk.caplen
    cols["wirelen"][:] = chunk.wirelen
    cols["linktype"][:] = chunk.linktype
    cols["iface"][:] = chunk.iface
    empty = np.zeros(0, dtype=np.int64)
    fragments_fast: dict[int, bytes] = {}
    control: tuple[np.ndarray, ...] = (empty,) * 5
    if engine == "packet":
        slow_rows = np.arange(n)
    else:
        fast: FastDecoder | core.CoreDecoder
        if engine == "core":
            fast = core.CoreDecoder(settings)
            fast.decode(chunk, cols)  # every frame: nothing is left to the per-packet path
            slow_rows = np.zeros(0, dtype=np.int64)
        else:
            fast = FastDecoder(settings)
            slow_rows = np.flatnonzero(fast.decode(chunk, cols))
        if slow_rows.size:
            for column in DECODED_COLUMNS:  # the fast path may have filled some layers before giving up
                cols[column.name][slow_rows] = column.missing
        rows, begins, ends = fast.fragment_spans()
        raw = memoryview(chunk.data)  # slicing a memoryview is several times cheaper than slicing the array
        for frame, begin, end in zip(chunk.frame[rows].tolist(), begins.tolist(), ends.tolist(), strict=True):
            fragments_fast[frame] = raw[begin:end].tobytes()
        control = fast.control_segments()
    out = DecodedChunk(columns=cols, slow_frames=int(slow_rows.size))
    decoder = PacketDecoder(settings, state.control)
    linktypes = chunk.linktype
    # values are gathered per column and written with one fancy assignment each (per-item numpy writes are slow)
    rows_by_column: dict[str, list[int]] = {}
    values_by_column: dict[str, list[object]] = {}
    # control segments the fast path decoded still pass the stream tracker, in frame order with the rest
    control_at = {row: k for k, row in enumerate(control[0].tolist())}
    # the stream keys and spans of those segments as Python values, read once (numpy scalar reads are slow)
    c_rows = control[0]
    c_src, c_dst = cols["ip_src"][c_rows].tolist(), cols["ip_dst"][c_rows].tolist()
    c_sport, c_dport = cols["sport"][c_rows].tolist(), cols["dport"][c_rows].tolist()
    c_seq, c_begin, c_end, c_len = (a.tolist() for a in control[1:5])
    raw = memoryview(chunk.data)
    for i in np.union1d(slow_rows, control[0]).tolist():
        row: dict[str, object] = {}
        fragment: bytes | None = None
        try:
            k = control_at.get(i)
            if k is None:
                fragment = decoder.decode(chunk.frame_bytes(i), int(linktypes[i]), row)
            else:
                key = (c_src[k], c_sport[k], c_dst[k], c_dport[k])
                payload = raw[c_begin[k] : c_end[k]].tobytes()
                state.control.segment(key, c_seq[k], payload, c_len[k], row)
        except Exception as exc:  # a decoder bug must not lose the capture: keep what was read, note it
            out.errors.append((int(chunk.frame[i]), f"{type(exc).__name__}: {exc}"))
        for name, value in row.items():
            if name not in rows_by_column:
                rows_by_column[name], values_by_column[name] = [], []
            rows_by_column[name].append(i)
            values_by_column[name].append(value)
        if fragment is not None:
            out.fragment_payloads[int(chunk.frame[i])] = fragment
    if fragments_fast:  # in frame order, like the per-packet path would have added them
        out.fragment_payloads = dict(sorted({**out.fragment_payloads, **fragments_fast}.items()))
    for name, rows in rows_by_column.items():
        cols[name][rows] = _typed(name, cols[name].dtype, values_by_column[name])
    return out
