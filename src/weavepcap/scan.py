"""The streaming per-capture pipeline: read → decode → defragment → classify → aggregates, in bounded memory."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from weavepcap.classes import (
    CLASS_CODE,
    CLASS_NAMES,
    CODE_SPACE,
    CONTROL_CLASSES,
    UNCERTAIN_REASONS,
    WEAVE_CLASSES,
)
from weavepcap.classify import classify, quoted_class, weave_endpoints
from weavepcap.defrag import Defragmenter, FragmentAnnotations, fragment_mask
from weavepcap.io.readers import KNOWN_LINKTYPES
from weavepcap.io.records import CaptureInfo, CaptureSpec, Damage
from weavepcap.model import iso_utc
from weavepcap.naming import host_naming
from weavepcap.schema import COLUMN_NAMES, PACKET_COLUMNS, TEXT_COLUMNS, empty_columns
from weavepcap.settings import DEFAULT_SETTINGS, Settings
from weavepcap.wire import IPPROTO_ESP

KEEP_CHOICES = ("notable", "all", "none")
DISSECTORS = ("native", "tshark")
Progress = Callable[[int, int], None]
Sink = Callable[[pd.DataFrame], None]
# Sees the rows about to reach the sink, in frame order, before any DataFrame is built: numpy columns where
# `klass` holds int8 codes into CLASS_NAMES and every other text column int32 codes into `texts[name]`
# (its distinct values). Returns the boolean mask of the rows the sink gets (bulk rows it drops are never copied).
RowFilter = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], np.ndarray]

# ESP whose peers are not (yet) known to speak Weave carries this provisional class until the
# end of the capture, when the whole capture's Weave endpoints decide it (Weave ESP or `other`).
_ESP_PENDING = "?esp"
# Partial per-second flow tables are merged once they hold this many rows (bounds memory and work).
_FLOW_COMPACT_ROWS = 1_000_000
# A sink gets rows in frame order; at most this many kept rows wait for an unresolved fragment train.
REORDER_MAX_ROWS = 65_536
# Kept rows of ESP between hosts not (yet) seen speaking Weave wait for the end of the capture; past this
# many they are decided at once (`other` unless their hosts are Weave peers by then).
PROVISIONAL_ESP_MAX_ROWS = 1_000_000
PCAP_RECORD_HEADER = 16  # progress estimate only (pcapng block headers are longer)


WIDE_LINKTYPE = "LINKTYPE_-1"  # the name a link type too wide for the int16 column would get


def link_type_name(linktype: int) -> str:
    """`ETHERNET`, `LINUX_SLL2`, ... as in Wireshark's encapsulation names; `LINKTYPE_<n>` otherwise."""
    return KNOWN_LINKTYPES.get(int(linktype), f"LINKTYPE_{int(linktype)}")


@dataclass
class CaptureSummary:
    """What one capture holds, aggregated over every frame (the `classify` output per capture)."""

    frames: int = 0
    bytes: int = 0  # sum of the frames' original (wire) lengths
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    link_types: list[str] = field(default_factory=list)
    classes: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> {"frames", "bytes"}
    peers: list[dict[str, object]] = field(default_factory=list)
    fastdp_heartbeats: list[dict[str, int]] = field(default_factory=list)
    icmp_frag_needed: list[dict[str, object]] = field(default_factory=list)
    icmpv6_packet_too_big: list[dict[str, object]] = field(default_factory=list)
    fragment_trains: dict[str, int] = field(default_factory=dict)  # reassembly status -> trains
    snaplen_cut_frames: int = 0  # frames captured shorter than they were on the wire (caplen < wirelen)
    uncertain: list[dict[str, object]] = field(default_factory=list)  # {"class", "frames", "reason"}
    damage: list[Damage] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "bytes": self.bytes,
            "first_time": iso_utc(self.first_ts_ns),
            "last_time": iso_utc(self.last_ts_ns),
            "duration_s": None if self.first_ts_ns is None or self.last_ts_ns is None
            else round((self.last_ts_ns - self.first_ts_ns) / 1e9, 6),
            "link_types": list(self.link_types),
            "damage": [d.to_dict() for d in self.damage],
            "classes": {name: dict(v) for name, v in self.classes.items()},
            "peers": self.peers,
            "fastdp_heartbeats": self.fastdp_heartbeats,
            "icmp_frag_needed": self.icmp_frag_needed,
            "icmpv6_packet_too_big": self.icmpv6_packet_too_big,
            "fragment_trains": dict(self.fragment_trains),
            "snaplen_cut_frames": self.snaplen_cut_frames,
            "uncertain": self.uncertain,
        }


@dataclass
class ScanResult:
    """One capture after the pipeline: its info, host, summary, kept packet rows and per-second flows."""

    info: CaptureInfo
    host: str
    summary: CaptureSummary
    packets: pd.DataFrame  # PACKET_COLUMNS + capture + host, kept rows only, in frame order
    flows_per_second: pd.DataFrame  # second, ip_src, ip_dst, klass, frames, bytes
    named_by: str = ""  # which naming rule gave `host` (weavepcap.naming)

    def to_dict(self) -> dict[str, object]:
        """The `classify --format json` entry of this capture."""
        return {"path": self.info.path, "name": self.info.name, "host": self.host, "named_by": self.named_by,
                **self.summary.to_dict()}


def scan_capture(
    spec: CaptureSpec | str,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    keep: str = "notable",
    progress: Progress | None = None,
    dissector: str = "native",
    flows: bool = True,
    sink: Sink | None = None,
    row_filter: RowFilter | None = None,
) -> ScanResult:
    """Run one capture through io → decode → defrag → classify → aggregates.

    Memory follows the chunk size plus the kept rows (`keep`: "notable" = every frame whose class
    is not `other`, "all", "none"), the open fragment trains and the small aggregates.
    `progress(bytes_done, bytes_total)` is called after each chunk (total 0 when unknown).
    `flows=False` skips the per-second flow table (faster when nobody needs it).
    `sink`: called with the kept rows (a DataFrame, `capture` and `host` included) as they settle, in
    frame order, instead of collecting them in `ScanResult.packets` (which is then empty): memory
    stays bounded whatever `keep` is.
    `row_filter` (with a sink): chooses which of those rows the sink gets (see RowFilter).
    Raises CaptureError (one line) when the capture cannot be read at all.
    """
    if isinstance(spec, str):
        spec = CaptureSpec.parse(spec)
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {KEEP_CHOICES}, not {keep!r}")
    if dissector not in DISSECTORS:
        raise ValueError(f"dissector must be one of {DISSECTORS}, not {dissector!r}")
    info, decoded = _open(spec, settings, dissector, progress)
    naming = host_naming(spec, info)
    pipeline = _Pipeline(settings, info.name, naming.host, keep, flows, sink, row_filter)
    for columns, payloads in decoded:
        pipeline.add_chunk(columns, payloads)
    result = pipeline.finish(info)
    result.named_by = naming.named_by
    return result


# --- sources: our reader + decoder, or tshark ---------------------------------------------------------

_Decoded = Iterator[tuple[dict[str, np.ndarray], dict[int, bytes]]]


def _open(spec: CaptureSpec, settings: Settings, dissector: str, progress: Progress | None) -> tuple[CaptureInfo, _Decoded]:
    if dissector == "tshark":
        return _open_tshark(spec, settings)
    from weavepcap.decode import DecodeState, decode_chunk
    from weavepcap.io import open_capture

    capture = open_capture(spec, settings)
    total = _file_size(spec.path) if not capture.info.compression else 0

    def decoded() -> _Decoded:
        state = DecodeState()
        for chunk in capture.chunks():
            result = decode_chunk(chunk, settings, state)
            for frame, message in result.errors:  # a decoder bug on one frame: the frame stays, half-decoded
                capture.info.damage.append(Damage(f"decoder error: {message}", frame=frame))
            if progress is not None and len(chunk):
                done = int(chunk.file_offset[-1]) + PCAP_RECORD_HEADER + int(chunk.caplen[-1])
                progress(min(done, total) if total else done, total)
            yield result.columns, result.fragment_payloads

    return capture.info, decoded()


def _open_tshark(spec: CaptureSpec, settings: Settings) -> tuple[CaptureInfo, _Decoded]:
    from weavepcap import tshark

    path = spec.path
    tshark.find_tshark()  # fail early, with one line, when tshark is missing
    if path == "-":  # tshark reads standard input itself; nothing may consume it first
        info = CaptureInfo(path=path, name="<stdin>", host=spec.host)
    else:
        # Our reader only looks at the header: the same one-line errors for files that are no capture
        # (tshark would dissect some text formats), and pcapng host metadata. tshark reads the frames.
        from weavepcap.io import open_capture

        with open_capture(spec, settings) as capture:
            info = capture.info

    def decoded() -> _Decoded:
        # tshark gives no payload bytes: fragments are reassembled by length only (no overlap check).
        for columns in tshark.iter_tshark_columns(path, settings, damage=info.damage):
            yield columns, {}

    return info, decoded()


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path) if path != "-" else 0
    except OSError:
        return 0


# --- the pipeline -----------------------------------------------------------------------------------


def _take(columns: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: array[rows] for name, array in columns.items()}


def _concat(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if a is None or not len(a["frame"]):
        return b
    return {name: np.concatenate([a[name], b[name]]) for name in b}


class _Pipeline:
    """Per-capture state across chunks: the defragmenter, rows awaiting their train, aggregates, kept rows."""

    def __init__(self, settings: Settings, capture: str, host: str, keep: str, flows: bool,
                 sink: Sink | None = None, row_filter: RowFilter | None = None) -> None:
        self.settings = settings
        self.sink = sink
        self.row_filter = row_filter
        self.capture = capture
        self.host = host
        self.keep = keep
        self.defrag = Defragmenter(settings, capture)
        self.pending: dict[str, np.ndarray] | None = None  # fragment rows whose train is still open
        self.weave_hosts: set[str] = set()
        self.provisional_esp = 0  # kept rows whose ESP class waits for the end of the capture
        self.agg = _Aggregates(settings, flows)
        # kept rows, as column parts (text as int32 codes) with each part's distinct text values
        self.kept: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    def add_chunk(self, columns: dict[str, np.ndarray], payloads: dict[int, bytes]) -> None:
        self.weave_hosts |= weave_endpoints(columns, self.settings)
        annotations = self.defrag.feed(columns, payloads)
        # Older waiting rows and the new chunk are resolved apart, so the chunk itself is never copied.
        older = self._resolve(self.pending, annotations) if self.pending is not None else None
        self.pending = _concat(older, self._resolve(columns, annotations))
        self.drain(final=False)
        if self.provisional_esp > PROVISIONAL_ESP_MAX_ROWS and self.sink is None:
            # A capture full of ESP and no Weave (so far): decide those rows now rather than hold them all.
            self.kept = [self._settle(self._take_kept(), final=True)]
            self.provisional_esp = 0

    def finish(self, info: CaptureInfo) -> ScanResult:
        annotations = self.defrag.finish()
        if self.pending is not None:
            rest = self._resolve(self.pending, annotations)
            if len(rest["frame"]):
                # Cannot happen (the defragmenter annotates every fragment it saw); should it, the rows
                # are still counted, as trains of their own that never completed, rather than lost.
                n = len(rest["frame"])
                self._resolve(rest, FragmentAnnotations(
                    frame=rest["frame"], frag_train=rest["frame"], reasm_len=np.full(n, -1, dtype=np.int32),
                    reasm_status=np.full(n, "incomplete", dtype=object), train_sport=np.full(n, -1, dtype=np.int32),
                    train_dport=np.full(n, -1, dtype=np.int32), train_udp_len=np.full(n, -1, dtype=np.int32)))
        self.pending = None
        self.drain(final=True)
        packets = self._packets()
        summary = self.agg.summary(self.weave_hosts)
        summary.fragment_trains = {k: v for k, v in self.defrag.counts.items() if v}
        summary.damage = list(info.damage)
        if not summary.link_types:
            summary.link_types = sorted({link_type_name(i.linktype) for i in info.interfaces})
        if WIDE_LINKTYPE in summary.link_types:  # link types beyond int16 are -1 in the frame table
            wide = {link_type_name(i.linktype) for i in info.interfaces if i.linktype > 32767}
            summary.link_types = sorted((set(summary.link_types) - {WIDE_LINKTYPE}) | wide)
        return ScanResult(info=info, host=self.host, summary=summary, packets=packets,
                          flows_per_second=self.agg.flows_table(self.weave_hosts))

    def _resolve(self, batch: dict[str, np.ndarray], annotations: FragmentAnnotations) -> dict[str, np.ndarray]:
        """Apply fragment annotations, classify and aggregate every row that is ready; return the rest."""
        n = len(batch["frame"])
        fragment = fragment_mask(batch)
        train_ports: dict[str, np.ndarray] = {}
        hit = np.zeros(n, dtype=bool)
        if len(annotations) and fragment.any():
            order = np.argsort(annotations.frame, kind="stable")
            frames = annotations.frame[order]
            idx = np.clip(np.searchsorted(frames, batch["frame"]), 0, len(frames) - 1)
            hit = (frames[idx] == batch["frame"]) & fragment
            src = order[idx[hit]]
            batch["frag_train"][hit] = annotations.frag_train[src]
            batch["reasm_len"][hit] = annotations.reasm_len[src]
            batch["reasm_status"][hit] = annotations.reasm_status[src]
            for name in ("train_sport", "train_dport", "train_udp_len"):
                values = np.full(n, -1, dtype=np.int32)
                values[hit] = getattr(annotations, name)[src]
                train_ports[name] = values
        waiting = fragment & ~hit
        ready: np.ndarray | None = None  # None: every row is ready (the common case, no copy)
        if waiting.any():
            ready = ~waiting
            rest = _take(batch, np.flatnonzero(waiting))
        else:
            rest = _take(batch, np.zeros(0, dtype=np.int64))
        if n and (ready is None or ready.any()):
            # Waiting rows are classified too (cheaper than cutting them out) but neither counted nor kept.
            codes = classify(batch, self.settings, weave_hosts=self.weave_hosts, **train_ports)
            esp_pending = (codes == OTHER) & batch["uncertain"] & (batch["ip_proto"] == IPPROTO_ESP)
            if esp_pending.any():
                codes[esp_pending] = ESP_PENDING_CODE
                batch["klass"][esp_pending] = _ESP_PENDING
            self.agg.add(batch, codes, ready)
            self._keep(batch, codes, ready)
        return rest

    def _keep(self, batch: dict[str, np.ndarray], codes: np.ndarray, ready: np.ndarray | None) -> None:
        if self.keep == "none":
            return
        rows = ready if self.keep == "all" else (codes != OTHER) if ready is None else (codes != OTHER) & ready
        part = {name: batch[name] for name in COLUMN_NAMES if name != "klass"}
        part[_CODE] = codes
        if rows is not None:
            if not rows.any():
                return
            part = _take(part, np.flatnonzero(rows))
        self.provisional_esp += int(np.count_nonzero(part[_CODE] == ESP_PENDING_CODE))
        # Text becomes integer codes + a few distinct values per part, so per-row strings are freed now.
        texts: dict[str, np.ndarray] = {}
        for name in _KEPT_TEXT:
            found, texts[name] = pd.factorize(part[name])
            part[name] = found.astype(np.int32)
        self.kept.append((part, texts))

    def _take_kept(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The kept parts as one set of columns (text codes over shared values), built column by column."""
        parts, self.kept = self.kept, []
        if not parts:
            empty = empty_columns(0)
            del empty["klass"]
            empty[_CODE] = np.zeros(0, dtype=np.int8)
            for name in _KEPT_TEXT:
                empty[name] = np.zeros(0, dtype=np.int32)
            return empty, {name: np.zeros(0, dtype=object) for name in _KEPT_TEXT}
        if len(parts) == 1:
            return parts[0]
        texts: dict[str, np.ndarray] = {}
        for name in _KEPT_TEXT:
            values: dict[str, int] = {}
            for part, part_texts in parts:
                remap = np.array([values.setdefault(v, len(values)) for v in part_texts[name].tolist()], dtype=np.int32)
                part[name] = remap[part[name]] if remap.size else part[name]
            texts[name] = np.array(list(values), dtype=object)
        out: dict[str, np.ndarray] = {}
        for name in list(parts[0][0]):
            out[name] = np.concatenate([part.pop(name) for part, _ in parts])
        return out, texts

    def _settle(self, kept: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], *, final: bool
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Decide provisional ESP rows between known Weave peers; at the end (`final`) the rest become `other`."""
        columns, texts = kept
        rows = np.flatnonzero(columns[_CODE] == ESP_PENDING_CODE)
        if not rows.size:
            return kept
        src = texts["ip_src"][columns["ip_src"][rows]]
        dst = texts["ip_dst"][columns["ip_dst"][rows]]
        weave = _between(src, dst, self.weave_hosts)
        columns[_CODE][rows[weave]] = CLASS_CODE["weave.fastdp.esp"]
        columns["uncertain"][rows[weave]] = False
        if final:
            other = rows[~weave]
            columns[_CODE][other] = OTHER
            if self.keep == "notable" and other.size:
                keep_rows = np.ones(len(columns[_CODE]), dtype=bool)
                keep_rows[other] = False
                columns = _take(columns, np.flatnonzero(keep_rows))
        return columns, texts

    def _packets(self) -> pd.DataFrame:
        columns, texts = self._settle(self._take_kept(), final=True)
        order = np.argsort(columns["frame"], kind="stable")
        n = len(order)
        out: dict[str, object] = {}
        for name in COLUMN_NAMES:  # one column at a time, so only one extra column is alive at once
            if name == "klass":
                out[name] = pd.Categorical.from_codes(columns.pop(_CODE)[order], list(CLASS_NAMES))
            elif name in texts:
                out[name] = pd.Categorical.from_codes(columns.pop(name)[order], pd.Index(texts[name], dtype=object))
            else:
                out[name] = columns.pop(name)[order]
        out["capture"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [self.capture])
        out["host"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [self.host])
        return pd.DataFrame(out, copy=False)

    def drain(self, *, final: bool) -> None:
        """Hand kept rows to the sink in frame order, holding back what is not settled yet (within a bound)."""
        if self.sink is None or not self.kept:
            return
        columns, texts = self._settle(self._take_kept(), final=final)
        frames = columns["frame"]
        leaving: np.ndarray | None = None  # rows handed over now; None: all of them
        if not final:
            # Rows from the first unresolved fragment or provisional ESP row on wait for it (within a bound).
            starts = frames[columns[_CODE] == ESP_PENDING_CODE].tolist()
            if self.pending is not None and len(self.pending["frame"]):
                starts.append(int(self.pending["frame"].min()))
            waiting = frames >= min(starts) if starts else np.zeros(len(frames), dtype=bool)
            if np.count_nonzero(waiting) > REORDER_MAX_ROWS:
                # Too much waits: settle provisional ESP as `other` now (the summary may still count it as
                # Weave ESP if its peers turn up later) and let fragment rows follow out of order.
                columns, texts = self._settle((columns, texts), final=True)
                frames = columns["frame"]
                waiting = np.zeros(len(frames), dtype=bool)
            if waiting.any():
                self.kept = [(_take(columns, np.flatnonzero(waiting)), texts)]
                leaving = np.flatnonzero(~waiting)
        # The rows that leave, in frame order, are copied once, at the end (after the row filter).
        order = np.argsort(frames if leaving is None else frames[leaving], kind="stable")
        if leaving is not None:
            order = leaving[order]
        if not order.size:
            return
        if self.row_filter is not None:
            in_order = _RowsInOrder(columns, order)
            in_order["klass"] = in_order[_CODE]
            order = order[self.row_filter(in_order, texts)]
            if not order.size:
                return
        columns = _take(columns, order)
        out: dict[str, np.ndarray] = {}
        for name in COLUMN_NAMES:
            if name == "klass":
                out[name] = _CODE_NAME_ARRAY[columns[_CODE]]
            elif name in texts:
                out[name] = texts[name][columns[name]]
            else:
                out[name] = columns[name]
        frame = _frame(out)
        frame["capture"] = self.capture
        frame["host"] = self.host
        self.sink(frame)


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A DataFrame over the arrays as they are: text stays `object` (pandas would convert it to its
    string dtype, ten times slower here; text columns become categories once, at the end)."""
    return pd.DataFrame({name: pd.Series(array, dtype=object, copy=False) if array.dtype == object else array
                         for name, array in columns.items()}, copy=False)


def _between(src: np.ndarray, dst: np.ndarray, hosts: set[str]) -> np.ndarray:
    if not hosts:
        return np.zeros(len(src), dtype=bool)
    host_list = list(hosts)
    return np.isin(src, host_list) & np.isin(dst, host_list)


def _codes_of(names: tuple[str, ...]) -> np.ndarray:
    return np.array([CLASS_CODE[name] for name in names], dtype=np.int8)


OTHER = CLASS_CODE["other"]
ESP_PENDING_CODE = len(CLASS_NAMES)  # one past the real classes
_CODE_NAMES = (*CLASS_NAMES, _ESP_PENDING)
_WEAVE_CODES = _codes_of(WEAVE_CLASSES)
_CONTROL_CODES = _codes_of(CONTROL_CLASSES)
_CODE = "_code"  # kept parts carry their int8 class codes in this extra column until they leave
_CODE_NAME_ARRAY = np.array(_CODE_NAMES, dtype=object)
_KEPT_TEXT = tuple(name for name in TEXT_COLUMNS if name != "klass")  # klass is rebuilt from the codes


class _Aggregates:
    """Streaming sums over classified rows; small dictionaries, whatever the capture size."""

    def __init__(self, settings: Settings, flows: bool) -> None:
        self.settings = settings
        self.flows_enabled = flows
        self.frames = 0
        self.bytes = 0
        self.snaplen_cut = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.linktypes: set[int] = set()
        self.class_frames = np.zeros(len(_CODE_NAMES), dtype=np.int64)
        self.class_bytes = np.zeros(len(_CODE_NAMES), dtype=np.int64)
        self.uncertain = np.zeros(len(_CODE_NAMES), dtype=np.int64)
        self.esp_pairs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.peer_frames: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # address -> [sent, received]
        self.peer_short_ids: dict[str, set[int]] = defaultdict(set)
        self.peer_names: dict[str, set[str]] = defaultdict(set)
        self.peer_nicknames: dict[str, set[str]] = defaultdict(set)
        self.heartbeats: Counter[tuple[int, int, int]] = Counter()  # (ip_len, frame_len, overlay_mtu)
        self.icmp: dict[str, dict[int, Counter[tuple[object, ...]]]] = {
            "icmp.frag_needed": defaultdict(Counter), "icmpv6.packet_too_big": defaultdict(Counter)}
        self.flow_parts: list[pd.DataFrame] = []
        self.flow_rows = 0

    def add(self, cols: dict[str, np.ndarray], codes: np.ndarray, ready: np.ndarray | None) -> None:
        """Count the rows of `cols` (only those where `ready` is true, when given)."""
        if ready is not None:
            rows = np.flatnonzero(ready)
            codes = codes[rows]
            cols = _ReadyRows(cols, rows)
        n = len(codes)
        if not n:
            return
        wirelen = cols["wirelen"].astype(np.int64)
        self.frames += n
        self.bytes += int(wirelen.sum())
        self.snaplen_cut += int(np.count_nonzero(cols["caplen"] < cols["wirelen"]))
        ts = cols["ts_ns"]
        lo, hi = int(ts.min()), int(ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        self.linktypes.update(np.unique(cols["linktype"]).tolist())

        self.class_frames += np.bincount(codes, minlength=len(_CODE_NAMES))
        self.class_bytes += np.bincount(codes, weights=wirelen, minlength=len(_CODE_NAMES)).astype(np.int64)
        uncertain = cols["uncertain"] & (codes != ESP_PENDING_CODE)
        if uncertain.any():
            self.uncertain += np.bincount(codes[uncertain], minlength=len(_CODE_NAMES))

        esp = codes == ESP_PENDING_CODE
        if esp.any():
            table = _frame({"s": cols["ip_src"][esp], "d": cols["ip_dst"][esp], "b": wirelen[esp]})
            for (src, dst), group in table.groupby(["s", "d"]):
                entry = self.esp_pairs[(str(src), str(dst))]
                entry[0] += len(group)
                entry[1] += int(group["b"].sum())

        # Addresses as small integer codes once per batch; peers and flows count on the codes.
        addresses = (pd.factorize(cols["ip_src"]), pd.factorize(cols["ip_dst"]))
        self._add_peers(cols, codes, addresses)
        self._add_heartbeats(cols, codes)
        self._add_icmp(cols, codes)
        if self.flows_enabled:
            self._add_flows(cols, codes, wirelen, addresses)

    def _add_peers(self, cols: dict[str, np.ndarray], codes: np.ndarray, addresses: _Factorized) -> None:
        weave = np.isin(codes, _WEAVE_CODES)
        if weave.any():
            for side, (found, names) in enumerate(addresses):
                counts = np.bincount(found[weave], minlength=len(names))
                for address, count in zip(names.tolist(), counts.tolist(), strict=True):
                    if count:
                        self.peer_frames[str(address)][side] += count
        fastdp = cols["peer_src_short"] >= 0
        if fastdp.any():
            # Distinct (address code, 12-bit short id) pairs, as one integer each.
            for (found, names), short in zip(addresses, (cols["peer_src_short"], cols["peer_dst_short"]), strict=True):
                pairs = np.unique(found[fastdp].astype(np.int64) * 4096 + short[fastdp])
                for pair in pairs.tolist():
                    self.peer_short_ids[str(names[pair // 4096])].add(pair % 4096)
        # Names come from the features map, one TCP weave_port segment per direction: few rows, a loop is fine.
        control = np.flatnonzero(np.isin(codes, _CONTROL_CODES))
        named = control[(cols["ctl_short_id"][control] >= 0) | (cols["ctl_peer_name"][control] != "")
                        | (cols["ctl_nickname"][control] != "")]
        for i in named.tolist():
            address = str(cols["ip_src"][i])
            if cols["ctl_peer_name"][i]:
                self.peer_names[address].add(str(cols["ctl_peer_name"][i]))
            if cols["ctl_nickname"][i]:
                self.peer_nicknames[address].add(str(cols["ctl_nickname"][i]))
            if cols["ctl_short_id"][i] >= 0:
                self.peer_short_ids[address].add(int(cols["ctl_short_id"][i]))
            self.peer_frames.setdefault(address, [0, 0])

    def _add_heartbeats(self, cols: dict[str, np.ndarray], codes: np.ndarray) -> None:
        hb = np.flatnonzero(codes == CLASS_CODE["weave.fastdp.heartbeat"])
        if hb.size:
            keys = zip(cols["ip_len"][hb].tolist(), cols["wirelen"][hb].tolist(), cols["overlay_mtu"][hb].tolist(),
                       strict=True)
            self.heartbeats.update(keys)

    def _add_icmp(self, cols: dict[str, np.ndarray], codes: np.ndarray) -> None:
        for name, by_mtu in self.icmp.items():
            rows = np.flatnonzero(codes == CLASS_CODE[name])
            if not rows.size:
                continue
            sub = {k: cols[k][rows] for k in ("frame", "q_ip_version", "q_ip_src", "q_ip_dst", "q_ip_proto", "q_sport",
                                              "q_dport", "q_ip_len", "q_inner_zero_eth", "icmp_mtu")}
            quoted = quoted_class(sub, self.settings)
            for i in range(rows.size):
                key = (str(sub["q_ip_src"][i]), str(sub["q_ip_dst"][i]), int(sub["q_ip_proto"][i]), int(sub["q_sport"][i]),
                       int(sub["q_dport"][i]), int(sub["q_ip_len"][i]), str(quoted[i]))
                by_mtu[int(sub["icmp_mtu"][i])][key] += 1

    def _add_flows(self, cols: dict[str, np.ndarray], codes: np.ndarray, wirelen: np.ndarray,
                   addresses: _Factorized) -> None:
        # Group by (second, source, destination, class) on one int64 key: far cheaper than a pandas
        # groupby over text columns.
        (src, src_names), (dst, dst_names) = addresses
        pair, _ = pd.factorize(src.astype(np.int64) * max(len(dst_names), 1) + dst)
        seconds = cols["ts_ns"] // 1_000_000_000
        base = int(seconds.min())
        key = ((seconds - base) * (int(pair.max()) + 1) + pair) * CODE_SPACE + codes
        group, _ = pd.factorize(key)
        groups = int(group.max()) + 1
        first = np.empty(groups, dtype=np.int64)
        first[group[::-1]] = np.arange(len(group) - 1, -1, -1)  # the first row of every group
        part = pd.DataFrame({
            "second": seconds[first],
            "ip_src": pd.Series(np.asarray(src_names, dtype=object)[src[first]], dtype=object),
            "ip_dst": pd.Series(np.asarray(dst_names, dtype=object)[dst[first]], dtype=object),
            "klass": codes[first].astype(np.int64),
            "frames": np.bincount(group, minlength=groups),
            "bytes": np.bincount(group, weights=wirelen, minlength=groups).astype(np.int64),
        })
        self.flow_parts.append(part)
        self.flow_rows += len(part)
        if self.flow_rows > _FLOW_COMPACT_ROWS and len(self.flow_parts) > 1:
            merged = self._merge_flows(self.flow_parts)
            self.flow_parts, self.flow_rows = [merged], len(merged)

    @staticmethod
    def _merge_flows(parts: list[pd.DataFrame]) -> pd.DataFrame:
        table = pd.concat(parts, ignore_index=True)
        return table.groupby(["second", "ip_src", "ip_dst", "klass"], sort=False, observed=True).agg(
            frames=("frames", "sum"), bytes=("bytes", "sum")).reset_index()

    def flows_table(self, weave_hosts: set[str]) -> pd.DataFrame:
        columns = ["second", "ip_src", "ip_dst", "klass", "frames", "bytes"]
        if not self.flow_parts:
            return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("second", "frames", "bytes") else "str")
                                 for c in columns})
        table = self._merge_flows(self.flow_parts)
        self.flow_parts = []
        table["klass"] = table["klass"].astype(np.int64)
        esp = (table["klass"] == ESP_PENDING_CODE).to_numpy()
        if esp.any():
            weave = _between(table["ip_src"].to_numpy(), table["ip_dst"].to_numpy(), weave_hosts)
            table.loc[esp, "klass"] = np.where(weave[esp], CLASS_CODE["weave.fastdp.esp"], OTHER)
            table = self._merge_flows([table])
        table["klass"] = np.array(_CODE_NAMES, dtype=object)[table["klass"].to_numpy()]
        table = table.sort_values(["second", "ip_src", "ip_dst", "klass"], kind="stable").reset_index(drop=True)
        for name in ("second", "frames", "bytes"):
            table[name] = table[name].astype("int64")
        return table[columns]

    def summary(self, weave_hosts: set[str]) -> CaptureSummary:
        frames, sizes, uncertain = self.class_frames.copy(), self.class_bytes.copy(), self.uncertain.copy()
        esp_code = CLASS_CODE["weave.fastdp.esp"]
        for (src, dst), (count, size) in self.esp_pairs.items():
            weave = src in weave_hosts and dst in weave_hosts
            target = esp_code if weave else OTHER
            frames[target] += count
            sizes[target] += size
            if weave:
                self.peer_frames[src][0] += count
                self.peer_frames[dst][1] += count
            else:
                uncertain[OTHER] += count
        self.esp_pairs.clear()
        ordered = {name: {"frames": int(frames[i]), "bytes": int(sizes[i])}
                   for i, name in enumerate(CLASS_NAMES) if frames[i]}
        return CaptureSummary(
            frames=self.frames,
            bytes=self.bytes,
            snaplen_cut_frames=self.snaplen_cut,
            first_ts_ns=self.first_ts,
            last_ts_ns=self.last_ts,
            link_types=[link_type_name(lt) for lt in sorted(self.linktypes)],
            classes=ordered,
            peers=self._peers(),
            fastdp_heartbeats=[
                {"ip_len": ip_len, "frame_len": frame_len, "overlay_mtu": mtu, "frames": count}
                for (ip_len, frame_len, mtu), count in sorted(self.heartbeats.items())
            ],
            icmp_frag_needed=self._icmp("icmp.frag_needed"),
            icmpv6_packet_too_big=self._icmp("icmpv6.packet_too_big"),
            uncertain=[{"class": name, "frames": int(uncertain[i]), "reason": UNCERTAIN_REASONS.get(name, "")}
                       for i, name in enumerate(CLASS_NAMES) if uncertain[i]],
        )

    def _peers(self) -> list[dict[str, object]]:
        addresses = sorted(set(self.peer_frames) | set(self.peer_short_ids), key=_address_key)
        return [
            {
                "address": address,
                "short_ids": sorted(self.peer_short_ids.get(address, set())),
                "names": sorted(self.peer_names.get(address, set())),
                "nicknames": sorted(self.peer_nicknames.get(address, set())),
                "frames_sent": self.peer_frames.get(address, [0, 0])[0],
                "frames_received": self.peer_frames.get(address, [0, 0])[1],
            }
            for address in addresses
            if address
        ]

    def _icmp(self, name: str) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for mtu, quotes in sorted(self.icmp[name].items()):
            out.append({
                "next_hop_mtu" if name == "icmp.frag_needed" else "mtu": mtu,
                "frames": sum(quotes.values()),
                "quoted": [
                    {"src": src, "dst": dst, "proto": proto, "sport": sport, "dport": dport, "ip_len": ip_len,
                     "class": quoted, "frames": count}
                    for (src, dst, proto, sport, dport, ip_len, quoted), count in sorted(
                        quotes.items(), key=lambda item: (-item[1], item[0]))
                ],
            })
        return out


class _ReadyRows(dict[str, np.ndarray]):
    """The ready rows of a batch, a column at a time: only the columns the aggregates read get copied."""

    def __init__(self, columns: dict[str, np.ndarray], rows: np.ndarray) -> None:
        super().__init__()
        self.columns = columns
        self.rows = rows

    def __missing__(self, name: str) -> np.ndarray:
        if name not in _AGGREGATE_COLUMNS:
            raise KeyError(name)
        taken = self[name] = self.columns[name][self.rows]
        return taken


class _RowsInOrder(dict[str, np.ndarray]):
    """Columns of a batch in the given row order, each taken only when first read (what a row filter sees)."""

    def __init__(self, columns: dict[str, np.ndarray], order: np.ndarray) -> None:
        super().__init__()
        self.columns = columns
        self.order = order

    def __missing__(self, name: str) -> np.ndarray:
        taken = self[name] = self.columns[name][self.order]
        return taken


_Factorized = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (codes, names) per side

# The columns _Aggregates reads (only these are cut out when part of a batch is not ready).
_AGGREGATE_COLUMNS = (
    "frame", "ts_ns", "caplen", "wirelen", "linktype", "ip_src", "ip_dst", "ip_len", "uncertain", "overlay_mtu",
    "peer_src_short", "peer_dst_short", "ctl_msg", "ctl_peer_name", "ctl_nickname", "ctl_short_id", "icmp_mtu",
    "q_ip_version", "q_ip_src", "q_ip_dst", "q_ip_proto", "q_sport", "q_dport", "q_ip_len", "q_inner_zero_eth",
)


def _address_key(address: str) -> tuple[int, str]:
    return (1 if ":" in address else 0, address)


class TimelineWriter:
    """Streams packet-table rows into one CSV or Parquet file (by the suffix), batch by batch."""

    SUFFIXES = (".csv", ".parquet")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in self.SUFFIXES:
            raise ValueError(f"{self.path}: timeline must end in .csv or .parquet")
        self.rows = 0
        self._parquet: object | None = None
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        table = frame.astype({c: "object" for c in (*TEXT_COLUMNS, "capture", "host") if c in frame.columns})
        if self.suffix == ".csv":
            table.to_csv(self.path, mode="a" if self._started else "w", header=not self._started, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(table, schema=_timeline_schema(), preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, arrow.schema)
            self._parquet.write_table(arrow)  # type: ignore[attr-defined]
        self._started = True
        self.rows += len(frame)

    def close(self) -> int:
        """Finish the file (an empty table with every column when nothing was written); returns rows."""
        if not self._started:
            self.write(_frame({**empty_columns(0), "capture": np.zeros(0, dtype=object),
                               "host": np.zeros(0, dtype=object)}))
        if self._parquet is not None:
            self._parquet.close()  # type: ignore[attr-defined]
            self._parquet = None
        return self.rows


def _timeline_schema() -> object:
    import pyarrow as pa

    fields = [pa.field(c.name, pa.string() if c.dtype == "str" else pa.from_numpy_dtype(np.dtype(c.dtype)))
              for c in PACKET_COLUMNS]
    return pa.schema([*fields, pa.field("capture", pa.string()), pa.field("host", pa.string())])


def write_timeline(results: list[ScanResult], path: str | Path) -> int:
    """Write the kept rows of every result as one CSV or Parquet table (by the file suffix); returns rows."""
    writer = TimelineWriter(path)
    for result in results:
        if len(result.packets):
            writer.write(result.packets)
    return writer.close()
