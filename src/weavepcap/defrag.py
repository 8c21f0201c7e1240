"""IPv4/IPv6 defragmentation: bounded fragment trains that report complete, overlap, conflict, timeout, incomplete or evicted."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import repeat

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


class _Sequential:
    """The per-fragment engine: exact in every case, used only for chunks where a bound may evict trains."""

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

    def _replay_key(self, columns: Mapping[str, np.ndarray], payloads: Mapping[int, bytes], idx: np.ndarray,
                    final: bool) -> tuple[list[tuple[_Train, str]], np.ndarray | None]:
        """Run one key's rows (arrival order) per fragment; return its resolved trains and the open one's rows."""
        self.settings = replace(self.settings, defrag_max_trains=1 << 62, defrag_max_bytes=1 << 62)
        out: list[tuple[_Train, str]] = []
        self._add_rows(columns, payloads, idx, out)
        if final:
            for train in self._trains.values():
                out.append((train, self._final_status(train, "incomplete")))
            self._trains.clear()
        else:
            self._expire(out)
        open_rows = None
        for train in self._trains.values():
            open_rows = idx[idx.shape[0] - len(train.frames):]
        self._trains.clear()
        self._buffered = 0
        return out, open_rows


_COLUMNS = ("frame", "ts_ns", "ip_version", "ip_src", "ip_dst", "ip_id", "ip_proto", "ip_mf", "ip_frag_off", "ip_len",
            "ip_hdr_len", "sport", "dport", "udp_len")
_OFFSET = np.int64(1 << 20)  # above any fragment end (offset < 2**16 plus length < 2**16): per-group cumulative max


def _payload_lengths(frames: np.ndarray, payloads: Mapping[int, bytes]) -> np.ndarray:
    # map() in C rather than a generator: this runs once per fragment row of every chunk.
    return np.fromiter(map(len, map(payloads.get, frames.tolist(), repeat(b""))), dtype=np.int64,
                       count=frames.shape[0])


def _segment_starts(first: np.ndarray, n: int) -> np.ndarray:
    """Group number of each sorted row, given a boolean 'starts a group' array."""
    return np.cumsum(first) - 1 if n else np.zeros(0, dtype=np.int64)


class Defragmenter:
    """Reassembles fragment trains keyed (capture, src, dst, id, proto), within bounds, never guessing.

    `feed()` takes one decoded chunk and returns annotations for every train resolved so far
    (fragments of earlier chunks included: trains may span chunks); `finish()` resolves the rest.

    Columnar: the fragment rows of open trains are carried from chunk to chunk, and every chunk groups
    carried and new rows by key with one sort and decides each train's facts in bulk. A train's state is
    a function of its own fragments only, so only three rare cases leave numpy: trains whose fragments
    overlap or conflict (replayed piece by piece to compare bytes and to know when they completed), keys
    whose fragments span the timeout or MAX_FRAGMENTS_PER_TRAIN (cut into trains one by one), and a chunk
    after which a bound (defrag_max_trains/_bytes) could have to evict (that chunk runs per fragment).
    """

    def __init__(self, settings: Settings, capture: str = "") -> None:
        self.settings = settings
        self.capture = capture
        self._rows: dict[str, np.ndarray] = {name: np.zeros(0, dtype=object) for name in _COLUMNS}  # open trains
        self._data: dict[int, bytes] = {}  # payloads of the carried rows
        self._open = 0
        self._buffered = 0
        self._now = -1
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)  # trains resolved, by status

    @property
    def open_trains(self) -> int:
        return self._open

    @property
    def buffered_bytes(self) -> int:
        return self._buffered

    def feed(self, columns: Mapping[str, np.ndarray], fragment_payloads: Mapping[int, bytes]) -> FragmentAnnotations:
        """Add the fragment rows of one chunk; return annotations of the trains resolved meanwhile."""
        rows = np.flatnonzero(fragment_mask(columns))
        if not rows.size:
            # Capture time only moves with fragments: the last chunk's expiry already saw this moment.
            return FragmentAnnotations.empty()
        new = {name: columns[name][rows] for name in _COLUMNS}
        if not self._open:
            # Nothing carried: the chunk's own payload map serves (no copy of the fragment bytes).
            combined, data = new, fragment_payloads
        else:
            combined = {name: np.concatenate([self._rows[name], new[name]]) for name in _COLUMNS}
            data = _ChainMap(self._data, fragment_payloads)
        return self._process(combined, data, final=False)

    def finish(self) -> FragmentAnnotations:
        """End of capture: every open train is resolved (complete ones as such, the rest incomplete)."""
        if not self._open:
            return FragmentAnnotations.empty()
        return self._process(self._rows, self._data, final=True)

    # --- internals -------------------------------------------------------------------------

    def _process(self, rows: dict[str, np.ndarray], data: Mapping[int, bytes], final: bool) -> FragmentAnnotations:
        n = int(rows["frame"].shape[0])
        frame = rows["frame"].astype(np.int64)
        ts = rows["ts_ns"].astype(np.int64)
        now = max(self._now, int(ts.max())) if n else self._now
        ip_len, hdr_len = rows["ip_len"].astype(np.int64), rows["ip_hdr_len"].astype(np.int64)
        have = _payload_lengths(frame, data)
        length = np.where((ip_len >= 0) & (hdr_len >= 0), ip_len - hdr_len, have)
        length = np.maximum(length, 0)
        nbytes = np.minimum(have, length)
        start = rows["ip_frag_off"].astype(np.int64)
        end = start + length
        last = ~rows["ip_mf"].astype(bool)

        # One sort by key (arrival order within a key); the key is (version, src, dst, id, proto).
        src = np.unique(rows["ip_src"], return_inverse=True)[1]
        dst = np.unique(rows["ip_dst"], return_inverse=True)[1]
        version, ip_id, proto = rows["ip_version"].astype(np.int64), rows["ip_id"].astype(np.int64), rows["ip_proto"].astype(np.int64)
        order = np.lexsort((np.arange(n), proto, ip_id, dst, src, version))
        keys = (version, src, dst, ip_id, proto)
        first = np.ones(n, dtype=bool)
        if n > 1:
            same = np.ones(n - 1, dtype=bool)
            for k in keys:
                ks = k[order]
                same &= ks[1:] == ks[:-1]
            first[1:] = ~same
        group = _segment_starts(first, n)  # per sorted row
        starts = np.flatnonzero(first)
        groups = starts.shape[0]
        count = np.diff(np.append(starts, n))
        ts_s = ts[order]
        first_ts = ts_s[starts]
        span = np.maximum.reduceat(ts_s, starts) - first_ts if groups else np.zeros(0, dtype=np.int64)
        timeout = self.settings.defrag_timeout_ns
        # A key whose fragments outlast the timeout or the fragment limit holds several trains in turn.
        several = (span > timeout) | (count > MAX_FRAGMENTS_PER_TRAIN)

        if not final and (groups + int(count[several].sum()) > self.settings.defrag_max_trains
                          or int(nbytes.sum()) > self.settings.defrag_max_bytes):
            return self._sequential(rows, data)

        end_s, start_s, last_s = end[order], start[order], last[order]
        big = np.logical_or.reduceat(end_s > MAX_DATAGRAM, starts) if groups else np.zeros(0, dtype=bool)
        has_last = np.logical_or.reduceat(last_s, starts) if groups else np.zeros(0, dtype=bool)
        last_end = np.where(last_s, end_s, MAX_DATAGRAM * 4)
        total = np.minimum.reduceat(last_end, starts) if groups else np.zeros(0, dtype=np.int64)
        total_hi = np.maximum.reduceat(np.where(last_s, end_s, -1), starts) if groups else total
        max_end = np.maximum.reduceat(end_s, starts) if groups else np.zeros(0, dtype=np.int64)
        conflict = big | (has_last & ((total != total_hi) | (total < max_end)))

        # Coverage and overlap: offset-sorted within each group, the furthest end reached before each piece.
        by_off = np.lexsort((start_s, group))
        g_o, s_o, e_o = group[by_off], start_s[by_off], end_s[by_off]
        base = g_o.astype(np.int64) * _OFFSET
        reach = np.maximum.accumulate(base + e_o) if n else base
        before = np.empty(n, dtype=np.int64)
        if n:
            before[0] = 0
            before[1:] = reach[:-1] - base[1:]
        before = np.maximum(before, 0)  # the first piece of a group sees the previous group's reach
        gap_row = s_o > before
        overlap_row = (e_o > s_o) & (s_o < before)
        gap = np.zeros(groups, dtype=bool)
        overlap = np.zeros(groups, dtype=bool)
        gap[g_o[gap_row]] = True
        overlap[g_o[overlap_row]] = True

        # The first offset-0 fragment (in arrival order) gives the header length and the ports.
        zero = np.flatnonzero(start_s == 0)  # sorted rows, arrival order within a group
        head_row = np.full(groups, -1, dtype=np.int64)
        if zero.size:
            gz = group[zero]
            keep = np.ones(zero.size, dtype=bool)
            keep[1:] = gz[1:] != gz[:-1]
            head_row[gz[keep]] = order[zero[keep]]
        has_head = head_row >= 0
        hr = np.maximum(head_row, 0)
        v6 = version[hr] == 6
        header = np.where(has_head, hdr_len[hr] - np.where(v6, IPV6_FRAGMENT_HEADER, 0), -1)

        def pick(name: str) -> np.ndarray:
            return np.where(has_head, rows[name][hr].astype(np.int64), -1)

        sport, dport, udp_len = pick("sport"), pick("dport"), pick("udp_len")
        complete = ~conflict & has_last & has_head & ~gap & (max_end >= total)
        last_ts = np.maximum.reduceat(ts_s, starts) if groups else first_ts

        linger = min(COMPLETE_LINGER_NS, timeout)
        hard = several | overlap | conflict
        if final:
            resolve = np.ones(groups, dtype=bool)
            unfinished = "incomplete"
        else:
            resolve = (complete & (now - last_ts > linger)) | (now - first_ts > timeout)
            unfinished = "timeout"
        # A simple group never overlaps: complete, or resolved unfinished (at the end, or by its timeout).
        status = np.where(complete, "complete", unfinished).astype(object)
        reasm = np.where(complete, header + total, -1)
        train_first = frame[order[starts]] if groups else np.zeros(0, dtype=np.int64)

        # Per resolved simple group: every row gets its train's facts.
        easy = resolve & ~hard
        out: list[FragmentAnnotations] = []
        row_ok = easy[group]
        if row_ok.any():
            sel = order[row_ok]
            g = group[row_ok]
            out.append(FragmentAnnotations(
                frame=frame[sel], frag_train=train_first[g], reasm_len=reasm[g].astype(np.int32),
                reasm_status=status[g], train_sport=sport[g].astype(np.int32), train_dport=dport[g].astype(np.int32),
                train_udp_len=udp_len[g].astype(np.int32)))
            for name in STATUSES:
                self.counts[name] += int(np.count_nonzero(status[easy] == name))
        carried = ~resolve & ~hard
        keep_rows = [order[carried[group]]]
        open_trains = int(np.count_nonzero(carried))

        # Rare trains: replayed fragment by fragment, exactly as the sequential engine would.
        if hard.any():
            engine = _Sequential(self.settings, self.capture)
            engine._now = now
            for gi in np.flatnonzero(hard).tolist():
                idx = order[starts[gi] : starts[gi] + count[gi]]
                resolved, still_open = engine._replay_key(rows, data, idx, final)
                out.append(engine._annotate(resolved))
                if still_open is not None:
                    keep_rows.append(np.asarray(still_open, dtype=np.int64))
                    open_trains += 1
            for name in STATUSES:
                self.counts[name] += engine.counts[name]

        kept = np.sort(np.concatenate(keep_rows)) if keep_rows else np.zeros(0, dtype=np.int64)
        self._rows = {name: rows[name][kept] for name in _COLUMNS}
        kept_frames = self._rows["frame"].tolist()
        self._data = {f: v for f, v in zip(kept_frames, map(data.get, kept_frames), strict=True) if v is not None}
        self._open = open_trains
        self._buffered = int(nbytes[kept].sum())
        self._now = now
        return FragmentAnnotations.concat(out) if out else FragmentAnnotations.empty()

    def _sequential(self, rows: dict[str, np.ndarray], data: Mapping[int, bytes]) -> FragmentAnnotations:
        """A chunk after which a bound may evict: replay the carried trains, then run the chunk per fragment."""
        engine = _Sequential(self.settings, self.capture)
        n_old = int(self._rows["frame"].shape[0])
        if n_old:
            # The carried rows are one open train per key, oldest first: rebuilding them evicts nothing.
            engine.settings = replace(self.settings, defrag_max_trains=1 << 62, defrag_max_bytes=1 << 62)
            engine._add_rows(rows, data, np.arange(n_old), [])
            engine.settings = self.settings
        engine._now = self._now
        out: list[tuple[_Train, str]] = []
        n = int(rows["frame"].shape[0])
        engine._add_rows(rows, data, np.arange(n_old, n), out)
        engine._expire(out)
        annotations = engine._annotate(out)
        for name in STATUSES:
            self.counts[name] += engine.counts[name]
        open_frames = [f for train in engine._trains.values() for f in train.frames]
        kept = np.flatnonzero(np.isin(rows["frame"].astype(np.int64), np.asarray(open_frames, dtype=np.int64)))
        self._rows = {name: rows[name][kept] for name in _COLUMNS}
        self._data = {f: data[f] for f in self._rows["frame"].tolist() if f in data}
        self._open = len(engine._trains)
        self._buffered = engine._buffered
        self._now = engine._now
        return annotations


class _ChainMap(Mapping[int, bytes]):
    """Carried payloads, then the chunk's: a read-only view without copying either."""

    def __init__(self, first: Mapping[int, bytes], second: Mapping[int, bytes]) -> None:
        self.first, self.second = first, second

    def __getitem__(self, key: int) -> bytes:
        if key in self.first:
            return self.first[key]
        return self.second[key]

    def get(self, key: int, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        value = self.first.get(key)
        return value if value is not None else self.second.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.first or key in self.second

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from self.first
        yield from self.second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)
