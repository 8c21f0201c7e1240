"""The per-fragment defragmenter weavepcap shipped before the columnar one: kept as the property tests' oracle."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from weavepcap.settings import Settings

# A complete train stays open this long (capture time) so that a late duplicate fragment (a
# retransmission seen after the last piece) is reported as an overlap of that train rather than
# as the start of a new, never-completed one. Bounded by defrag_timeout_ns as well.
COMPLETE_LINGER_NS = 1_000_000_000

# IPv4 total length is 16 bits: no datagram, hence no fragment offset + length, can pass this.
MAX_DATAGRAM = 65535
IPV6_FRAGMENT_HEADER = 8
# A 65535-byte datagram over a 576-byte MTU needs ~120 fragments; far more is an attack or garbage, and
# overlap checks are quadratic in the pieces of a train, so such a train is given up as `evicted`.
MAX_FRAGMENTS_PER_TRAIN = 1024

STATUSES = ("complete", "overlap", "conflict", "timeout", "incomplete", "evicted")


def fragment_mask(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows that are IP fragments (IPv4 MF or offset > 0; IPv6 fragment header with M or offset > 0)."""
    version = columns["ip_version"]
    partial = columns["ip_mf"] | (columns["ip_frag_off"] > 0)
    v4 = (version == 4) & partial
    # IPv6 only has an identification when a fragment header is present; an atomic fragment
    # (offset 0, M clear) carries a whole datagram and needs no reassembly.
    v6 = (version == 6) & (columns["ip_id"] >= 0) & partial
    return v4 | v6


@dataclass
class FragmentAnnotations:
    """Per-fragment results of resolved trains, columnar: row i describes frame `frame[i]`."""

    frame: np.ndarray  # int64
    frag_train: np.ndarray  # int64: first frame number of the train
    reasm_len: np.ndarray  # int32: reassembled IP length, -1 unless complete/overlap
    reasm_status: np.ndarray  # object (str)
    train_sport: np.ndarray  # int32: the first fragment's UDP/TCP ports (-1 if the first piece is missing)
    train_dport: np.ndarray  # int32
    train_udp_len: np.ndarray  # int32: the first fragment's UDP length field

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @classmethod
    def empty(cls) -> FragmentAnnotations:
        return cls.concat([])

    @classmethod
    def concat(cls, parts: list[FragmentAnnotations]) -> FragmentAnnotations:
        def cat(name: str, dtype: str) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)

        return cls(
            frame=cat("frame", "int64"),
            frag_train=cat("frag_train", "int64"),
            reasm_len=cat("reasm_len", "int32"),
            reasm_status=cat("reasm_status", "object"),
            train_sport=cat("train_sport", "int32"),
            train_dport=cat("train_dport", "int32"),
            train_udp_len=cat("train_udp_len", "int32"),
        )


@dataclass
class _Piece:
    start: int
    end: int  # exclusive, by the IP header's length
    data: bytes  # captured bytes (may be shorter than end - start when the snap length cut the frame)


@dataclass
class _Train:
    key: tuple[object, ...]
    first_frame: int
    first_ts: int
    last_ts: int
    frames: list[int] = field(default_factory=list)
    pieces: list[_Piece] = field(default_factory=list)
    total: int = -1  # fragmentable-part length, known once the last fragment (M clear) arrives
    header_len: int = -1  # IP header length of the offset-0 fragment (without the IPv6 fragment header)
    sport: int = -1
    dport: int = -1
    udp_len: int = -1
    overlap: bool = False
    conflict: bool = False
    complete_at: int = -1  # capture time at which the train became complete, -1 while it is not
    buffered: int = 0
    max_end: int = 0  # furthest byte any piece reaches

    def add(self, frame: int, ts: int, start: int, length: int, data: bytes, last: bool) -> None:
        self.frames.append(frame)
        self.last_ts = max(self.last_ts, ts)
        end = start + length
        if end > MAX_DATAGRAM:
            self.conflict = True
        for piece in self.pieces:
            lo, hi = max(start, piece.start), min(end, piece.end)
            if lo >= hi:
                continue
            self.overlap = True
            # Compare only the bytes both fragments actually captured.
            a = data[lo - start : hi - start]
            b = piece.data[lo - piece.start : hi - piece.start]
            n = min(len(a), len(b))
            if a[:n] != b[:n]:
                self.conflict = True
        if last:
            if self.total >= 0 and self.total != end:
                self.conflict = True  # two different "last" fragments
            self.total = end if self.total < 0 else min(self.total, end)
        self.max_end = max(self.max_end, end)
        if 0 <= self.total < self.max_end:
            self.conflict = True  # data beyond the datagram's end
        self.pieces.append(_Piece(start, end, data))
        self.buffered += len(data)

    def is_complete(self) -> bool:
        if self.total < 0 or self.header_len < 0:
            return False
        reached = 0
        for piece in sorted(self.pieces, key=lambda p: p.start):
            if piece.start > reached:
                return False
            reached = max(reached, piece.end)
        return reached >= self.total


class Defragmenter:
    """Reassembles fragment trains keyed (capture, src, dst, id, proto), within bounds, never guessing.

    `feed()` takes one decoded chunk and returns annotations for every train resolved so far
    (fragments of earlier chunks included: trains may span chunks); `finish()` resolves the rest.
    """

    def __init__(self, settings: Settings, capture: str = "") -> None:
        self.settings = settings
        self.capture = capture
        self._trains: OrderedDict[tuple[object, ...], _Train] = OrderedDict()  # oldest first
        self._buffered = 0
        self._now = -1
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)  # trains resolved, by status

    @property
    def open_trains(self) -> int:
        return len(self._trains)

    @property
    def buffered_bytes(self) -> int:
        return self._buffered

    def feed(self, columns: Mapping[str, np.ndarray], fragment_payloads: Mapping[int, bytes]) -> FragmentAnnotations:
        """Add the fragment rows of one chunk; return annotations of the trains resolved meanwhile."""
        out: list[tuple[_Train, str]] = []
        rows = np.flatnonzero(fragment_mask(columns))
        if rows.size:
            self._add_rows(columns, fragment_payloads, rows, out)
        self._expire(out)
        return self._annotate(out)

    def finish(self) -> FragmentAnnotations:
        """End of capture: every open train is resolved (complete ones as such, the rest incomplete)."""
        out: list[tuple[_Train, str]] = []
        while self._trains:
            _, train = self._trains.popitem(last=False)
            self._buffered -= train.buffered
            out.append((train, self._final_status(train, "incomplete")))
        return self._annotate(out)

    # --- internals -------------------------------------------------------------------------

    def _add_rows(
        self,
        columns: Mapping[str, np.ndarray],
        payloads: Mapping[int, bytes],
        rows: np.ndarray,
        out: list[tuple[_Train, str]],
    ) -> None:
        # Pull the few columns we need as Python lists once: fragments are a small share of frames.
        get = {name: columns[name][rows].tolist() for name in (
            "frame", "ts_ns", "ip_version", "ip_src", "ip_dst", "ip_id", "ip_proto", "ip_mf",
            "ip_frag_off", "ip_len", "ip_hdr_len", "sport", "dport", "udp_len")}
        timeout = self.settings.defrag_timeout_ns
        for i in range(rows.size):
            frame, ts = int(get["frame"][i]), int(get["ts_ns"][i])
            self._now = max(self._now, ts)
            version = int(get["ip_version"][i])
            key = (self.capture, version, get["ip_src"][i], get["ip_dst"][i], int(get["ip_id"][i]), int(get["ip_proto"][i]))
            data = payloads.get(frame, b"")
            ip_len, hdr_len = int(get["ip_len"][i]), int(get["ip_hdr_len"][i])
            length = ip_len - hdr_len if ip_len >= 0 and hdr_len >= 0 else len(data)
            length = max(length, 0)
            data = data[:length]
            start = int(get["ip_frag_off"][i])
            train = self._trains.get(key)
            if train is not None and ts - train.first_ts > timeout:
                self._drop(key)
                out.append((train, self._final_status(train, "timeout")))
                train = None
            if train is not None and len(train.frames) >= MAX_FRAGMENTS_PER_TRAIN:
                self._drop(key)
                out.append((train, self._final_status(train, "evicted")))
                train = None
            if train is None:
                train = _Train(key=key, first_frame=frame, first_ts=ts, last_ts=ts)
                self._trains[key] = train
            train.add(frame, ts, start, length, data, last=not bool(get["ip_mf"][i]))
            self._buffered += len(data)
            if start == 0 and train.header_len < 0:
                # IPv6: the reassembled packet loses the fragment header.
                train.header_len = hdr_len - (IPV6_FRAGMENT_HEADER if version == 6 else 0)
                train.sport, train.dport, train.udp_len = int(get["sport"][i]), int(get["dport"][i]), int(get["udp_len"][i])
            if train.complete_at < 0 and train.is_complete():
                train.complete_at = ts
            self._enforce_bounds(out)

    def _final_status(self, train: _Train, unfinished: str) -> str:
        if train.conflict:
            return "conflict"
        if train.complete_at < 0 and not train.is_complete():
            return unfinished
        return "overlap" if train.overlap else "complete"

    def _drop(self, key: tuple[object, ...]) -> _Train:
        train = self._trains.pop(key)
        self._buffered -= train.buffered
        return train

    def _expire(self, out: list[tuple[_Train, str]]) -> None:
        """Resolve trains that timed out, and complete trains past their linger, at the current capture time."""
        timeout = self.settings.defrag_timeout_ns
        linger = min(COMPLETE_LINGER_NS, timeout)
        for key, train in list(self._trains.items()):
            if train.complete_at >= 0 and self._now - train.last_ts > linger:
                self._drop(key)
                out.append((train, self._final_status(train, "incomplete")))
            elif self._now - train.first_ts > timeout:
                self._drop(key)
                out.append((train, self._final_status(train, "timeout")))

    def _enforce_bounds(self, out: list[tuple[_Train, str]]) -> None:
        """Keep at most defrag_max_trains trains and defrag_max_bytes bytes: finished trains go first, then the oldest."""
        max_trains, max_bytes = self.settings.defrag_max_trains, self.settings.defrag_max_bytes
        while len(self._trains) > max_trains or (self._buffered > max_bytes and len(self._trains) > 1):
            victim = next((k for k, t in self._trains.items() if t.complete_at >= 0), None)
            if victim is None:
                victim = next(iter(self._trains))
            train = self._drop(victim)
            out.append((train, self._final_status(train, "evicted")))

    def _annotate(self, resolved: list[tuple[_Train, str]]) -> FragmentAnnotations:
        frames: list[int] = []
        trains: list[int] = []
        lengths: list[int] = []
        statuses: list[str] = []
        sports: list[int] = []
        dports: list[int] = []
        udp_lens: list[int] = []
        for train, status in resolved:
            self.counts[status] += 1
            reasm = train.header_len + train.total if status in ("complete", "overlap") else -1
            n = len(train.frames)
            frames.extend(train.frames)
            trains.extend([train.first_frame] * n)
            lengths.extend([reasm] * n)
            statuses.extend([status] * n)
            sports.extend([train.sport] * n)
            dports.extend([train.dport] * n)
            udp_lens.extend([train.udp_len] * n)
        status_array = np.empty(len(statuses), dtype=object)
        status_array[:] = statuses
        return FragmentAnnotations(
            frame=np.array(frames, dtype=np.int64),
            frag_train=np.array(trains, dtype=np.int64),
            reasm_len=np.array(lengths, dtype=np.int32),
            reasm_status=status_array,
            train_sport=np.array(sports, dtype=np.int32),
            train_dport=np.array(dports, dtype=np.int32),
            train_udp_len=np.array(udp_lens, dtype=np.int32),
        )
