"""The analysis pipeline, top-down: scan each capture, align hosts, detect events, run rules, decide a verdict."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from weavepcap import __version__
from weavepcap.classes import BULK_CLASSES, CLASS_CODE, CODE_SPACE, HEARTBEAT_CLASSES, WEAVE_CLASSES
from weavepcap.detect import EVENTS, Timeline, detect_events, match_delivery
from weavepcap.detect.base import empty_events, label, text
from weavepcap.detect.paths import summarize_paths
from weavepcap.diagnose import Diagnosis, diagnose
from weavepcap.io.records import CaptureSpec
from weavepcap.model import CaptureRecord, Finding, HostInfo, PathInfo, RuledOut, Verdict, iso_utc
from weavepcap.naming import SAFE_HOST_NAME, infer_file_hosts
from weavepcap.rules import RULES
from weavepcap.rules.base import Context, with_ports
from weavepcap.runs import collapse
from weavepcap.schema import PACKET_COLUMNS
from weavepcap.settings import DEFAULT_SETTINGS, Settings
from weavepcap.timeline import align, estimate_offsets, resolve_addresses

FORMAT_VERSION = 1  # of the JSON document (docs/contracts.md); bump on any incompatible change
ALL_ROWS_MAX_BYTES = 64 * 1024 * 1024  # inputs up to this size keep every frame (pings etc. can be cited)
SERIES_PACKET_CAP = 20_000  # series.packets points kept (special packets always, the rest evenly sampled)

# Big inputs: bulk data frames are thinned as the scan hands them over (memory and time follow the Weave
# control/special traffic, not the data): per capture and (source, destination, class) the first
# THIN_HEAD and last THIN_TAIL frames and every THIN_STRIDE-th of the bulk classes are kept; every other
# class is kept whole.
THIN_HEAD = 1000
THIN_TAIL = 200
THIN_STRIDE = 50

_THIN_CODES = np.array([CLASS_CODE[name] for name in BULK_CLASSES], dtype=np.int8)

Progress = Callable[[int, int], None]
ProgressFactory = Callable[[str], Progress | None]


@dataclass
class CaptureInput:
    """One scanned capture as the analysis needs it (a ScanResult, or hand-made for tests)."""

    record: CaptureRecord
    packets: pd.DataFrame  # PACKET_COLUMNS + capture + host
    flows_per_second: pd.DataFrame = field(default_factory=pd.DataFrame)
    peers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Analysis:
    """A finished analysis: what presenters (terminal, JSON, HTML) and notebooks read."""

    captures: list[CaptureRecord]
    hosts: dict[str, HostInfo]
    packets: pd.DataFrame  # kept rows of every capture, aligned (`t_ns`), with `dir`, `src_host`, `dst_host`
    events: pd.DataFrame  # detect.EVENT_COLUMNS, time-ordered
    verdict: Verdict
    findings: list[Finding]
    ruled_out: list[RuledOut]
    caveats: list[str]
    paths: list[PathInfo]
    series: dict[str, list[dict[str, Any]]]
    t0_ns: int
    settings: Settings = DEFAULT_SETTINGS
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def timeline_table(self) -> pd.DataFrame:
        """The event timeline as a flat table (what `--timeline` writes): time, t, host, capture, frame, event, message, filter, attrs."""
        ev = self.events
        out = pd.DataFrame({
            "time": [iso_utc(int(t)) for t in ev["t_ns"]],
            "t": (ev["t_ns"].to_numpy() - self.t0_ns) / 1e9 if len(ev) else np.zeros(0),
            "host": ev["host"].to_numpy(), "capture": ev["capture"].to_numpy(), "frame": ev["frame"].to_numpy(),
            "event": ev["event"].to_numpy(), "message": ev["message"].to_numpy(), "filter": ev["filter"].to_numpy(),
            "attrs": [json.dumps(a, sort_keys=True) for a in ev["attrs"]],
        })
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of docs/contracts.md (format_version 1)."""
        ev = self.events
        timeline = [
            {"time": iso_utc(int(t)), "t": round((int(t) - self.t0_ns) / 1e9, 6), "host": h, "capture": c,
             "frame": int(f), "event": e, "message": m, "filter": flt, "src_host": sh, "dst_host": dh, "attrs": a}
            for t, h, c, f, e, m, flt, sh, dh, a in zip(
                ev["t_ns"], ev["host"], ev["capture"], ev["frame"], ev["event"], ev["message"], ev["filter"],
                ev["src_host"], ev["dst_host"], ev["attrs"], strict=True)
        ]
        return {
            "format_version": FORMAT_VERSION,
            "tool": {"name": "weavepcap", "version": __version__},
            "generated_at": self.generated_at,
            "settings": {"weave_port": self.settings.weave_port, "fastdp_port": self.settings.fastdp_port},
            "captures": [c.to_dict() for c in self.captures],
            "hosts": [h.to_dict() for h in self.hosts.values()],
            "verdict": self.verdict.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "ruled_out": [r.to_dict() for r in self.ruled_out],
            "caveats": list(self.caveats),
            "paths": [p.to_dict() for p in self.paths],
            "timeline": timeline,
            "timeline_runs": collapse(timeline),  # repeated events as one row each (members index `timeline`)
            "series": self.series,
            "rules": [{"id": r.id, "title": r.title_for(self.settings), "kind": r.kind,
                       "fix": with_ports(r.fix, self.settings)} for r in RULES],
            "events": dict(EVENTS),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def analyze(
    captures: Sequence[str | Path | CaptureSpec],
    *,
    clock_offsets: dict[str, float] | None = None,
    settings: Settings | None = None,
    progress: Progress | ProgressFactory | None = None,
) -> Analysis:
    """Analyse captures (paths, `HOST=PATH` strings or CaptureSpecs) into one Analysis.

    `clock_offsets` forces a host's offset (seconds its clock is ahead of the first host's).
    `progress(bytes_done, bytes_total)` is passed to each capture's scan. Raises CaptureError when a
    capture cannot be read at all; a damaged capture is analysed as far as it reads, with a caveat.
    """
    settings = settings or DEFAULT_SETTINGS
    specs = infer_file_hosts([c if isinstance(c, CaptureSpec) else CaptureSpec.parse(str(c)) for c in captures])
    inputs: list[CaptureInput] = []
    keep = keep_for(specs)
    for spec in specs:
        inputs.append(scan_input(spec, settings, keep, progress))  # type: ignore[arg-type]
    return analyze_inputs(inputs, clock_offsets=clock_offsets, settings=settings)


def scan_input(spec: CaptureSpec, settings: Settings, keep: str, progress: Progress | None = None) -> CaptureInput:
    """Scan one capture; with keep="notable" (big inputs) bulk data rows are thinned on the way (Thinner)."""
    from weavepcap.scan import scan_capture

    thinner = Thinner() if keep != "all" else None
    result = scan_capture(spec, settings, keep=keep, progress=progress, sink=thinner,
                          row_filter=thinner.select if thinner is not None else None)
    out = input_from_scan(result)
    if thinner is not None:
        out.packets = thinner.frame()
    return out


class Thinner:
    """A scan sink keeping every special row and a bounded, representative part of the bulk data rows.

    Given to the scan as its row filter too (`select`), it thins on the scan's integer codes before any
    DataFrame is built; as a plain sink it thins the DataFrames it gets, with the same result."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []
        self.tail_parts: list[pd.DataFrame] = []
        self.counts: dict[tuple[str, str, str], int] = {}
        self._flow_counts: dict[tuple[str, str, int], int] = {}  # (source, destination, class code) -> rows seen
        self._selected_tail: np.ndarray | None = None  # of the rows `select` passed on: tail candidates only

    def select(self, columns: dict[str, np.ndarray], texts: dict[str, np.ndarray]) -> np.ndarray:
        """The scan's row filter: which of these rows (frame order, text as codes) reach `__call__`."""
        klass = columns["klass"]
        bulk = np.isin(klass, _THIN_CODES)
        passed = ~bulk
        tail = np.zeros(len(klass), dtype=bool)
        idx = np.flatnonzero(bulk)
        if idx.size:
            # Flows on one int64 key over this batch's address codes (codes index its distinct addresses).
            src_names, dst_names = texts["ip_src"], texts["ip_dst"]
            src = columns["ip_src"][idx].astype(np.int64)
            dst = columns["ip_dst"][idx].astype(np.int64)
            key = (src * max(len(dst_names), 1) + dst) * CODE_SPACE + klass[idx]
            group, first = pd.factorize(key)
            size = np.bincount(group)
            by_group = np.argsort(group, kind="stable")
            rank = np.empty(idx.size, dtype=np.int64)
            rank[by_group] = np.arange(idx.size) - np.repeat(np.cumsum(size) - size, size)
            # Counts carry over batches by the flow's text (a batch's codes are its own).
            flows = [(str(src_names[k // CODE_SPACE // max(len(dst_names), 1)]),
                      str(dst_names[k // CODE_SPACE % max(len(dst_names), 1)]), int(k % CODE_SPACE))
                     for k in first.tolist()]
            base = np.array([self._flow_counts.get(flow, 0) for flow in flows], dtype=np.int64)
            for flow, start, n in zip(flows, base.tolist(), size.tolist(), strict=True):
                self._flow_counts[flow] = start + n
            pos = base[group] + rank
            passed[idx[(pos < THIN_HEAD) | (pos % THIN_STRIDE == 0)]] = True
            tail[idx[rank >= size[group] - THIN_TAIL]] = True  # candidates for each group's last rows
            tail &= ~passed
            passed |= tail
        self._selected_tail = tail[passed]
        return passed

    def __call__(self, chunk: pd.DataFrame) -> None:
        tail, self._selected_tail = self._selected_tail, None
        if tail is not None and len(tail) == len(chunk):  # already thinned by `select`
            if tail.any():
                self.parts.append(chunk[~tail])
                self.tail_parts.append(chunk[tail])
            else:
                self.parts.append(chunk)
            return
        if chunk.empty:
            return
        klass = text(chunk["klass"])
        bulk = np.isin(klass, BULK_CLASSES)
        if not bulk.any():
            self.parts.append(chunk)
            return
        idx = np.flatnonzero(bulk)
        keys = pd.DataFrame({"s": text(chunk["ip_src"])[idx], "d": text(chunk["ip_dst"])[idx], "k": klass[idx]})
        group = keys.groupby(["s", "d", "k"], sort=False)
        rank = group.cumcount().to_numpy()
        size = group["k"].transform("size").to_numpy()
        base = np.zeros(len(idx), dtype=np.int64)
        for key, positions in group.indices.items():
            start = self.counts.get(key, 0)
            base[positions] = start
            self.counts[key] = start + len(positions)
        pos = base + rank
        keep = ~bulk
        keep[idx[(pos < THIN_HEAD) | (pos % THIN_STRIDE == 0)]] = True
        tail = np.zeros(len(chunk), dtype=bool)
        tail[idx[rank >= size - THIN_TAIL]] = True  # candidates for each group's last rows
        self.parts.append(chunk[keep])
        self.tail_parts.append(chunk[tail & ~keep])

    def frame(self) -> pd.DataFrame:
        parts = list(self.parts)
        tails = [t for t in self.tail_parts if len(t)]
        if tails:
            tail = pd.concat(tails, ignore_index=True)
            keys = pd.DataFrame({"s": text(tail["ip_src"]), "d": text(tail["ip_dst"]), "k": text(tail["klass"])})
            last = keys.groupby(["s", "d", "k"], sort=False).cumcount(ascending=False).to_numpy() < THIN_TAIL
            parts.append(tail[last])
        if not parts:
            return _empty_packets()
        out = pd.concat(parts, ignore_index=True)
        return out.drop_duplicates("frame").sort_values("frame", kind="stable").reset_index(drop=True)


def keep_for(specs: Sequence[CaptureSpec]) -> str:
    """Which rows to keep: every frame for small inputs (rules may cite pings and other traffic), only the
    notable ones (class not `other`) for big inputs, so memory follows the Weave traffic."""
    total = 0
    for spec in specs:
        try:
            total += Path(spec.path).stat().st_size if spec.path != "-" else ALL_ROWS_MAX_BYTES + 1
        except OSError:
            continue  # the scan reports the unreadable file with its own one-line error
    return "all" if total <= ALL_ROWS_MAX_BYTES else "notable"


def input_from_scan(result: Any) -> CaptureInput:
    """A ScanResult (weavepcap.scan) as a CaptureInput."""
    info, summary = result.info, result.summary
    damage = [d.to_dict() for d in (summary.damage or info.damage)]
    record = CaptureRecord(
        path=info.path, name=info.name, host=result.host, named_by=getattr(result, "named_by", ""),
        frames=summary.frames, bytes=summary.bytes,
        first_ns=summary.first_ts_ns, last_ns=summary.last_ts_ns, link_types=list(summary.link_types),
        classes={k: dict(v) for k, v in summary.classes.items()}, damage=damage,
    )
    return CaptureInput(record, result.packets, result.flows_per_second, list(summary.peers))


def _empty_packets() -> pd.DataFrame:
    cols: dict[str, pd.Series] = {}
    for c in PACKET_COLUMNS:
        cols[c.name] = pd.Series(dtype=object if c.dtype == "str" else c.dtype)
    cols["capture"] = pd.Series(dtype=object)
    cols["host"] = pd.Series(dtype=object)
    return pd.DataFrame(cols)


def analyze_inputs(
    inputs: list[CaptureInput],
    *,
    clock_offsets: dict[str, float] | None = None,
    settings: Settings | None = None,
) -> Analysis:
    """Everything after the scans: hosts, clocks, timeline, events, rules, verdict, paths, series."""
    settings = settings or DEFAULT_SETTINGS
    host_names = list(dict.fromkeys(i.record.host for i in inputs))
    frames = [i.packets for i in inputs if len(i.packets)]
    packets = pd.concat(frames, ignore_index=True) if frames else _empty_packets()
    for col in ("capture", "host"):
        packets[col] = text(packets[col]) if len(packets) else packets[col]
    addresses = resolve_addresses(packets, host_names)
    clocks = estimate_offsets(packets, host_names, addresses, clock_offsets)
    hosts: dict[str, HostInfo] = {}
    for name in host_names:
        est = clocks[name]
        hosts[name] = HostInfo(
            name=name, captures=[i.record.name for i in inputs if i.record.host == name],
            addresses=addresses.get(name, []), clock_offset_s=est.offset_s,
            clock_offset_uncertainty_s=est.uncertainty_s, clock_reference=est.source == "reference",
            clock_source=est.source, clock_matches=est.matches,
            named_by="; ".join(dict.fromkeys(i.record.named_by for i in inputs if i.record.host == name
                                             and i.record.named_by)),
        )
    _add_peer_identity(hosts, inputs, packets)
    for i in inputs:
        i.record.clock_offset_s = hosts[i.record.host].clock_offset_s
    tl_packets = align(packets, hosts) if len(packets) else packets.assign(
        t_ns=pd.Series(dtype="int64"), src_host="", dst_host="", dir="")
    spans: dict[str, tuple[int, int]] = {}
    for i in inputs:
        rec = i.record
        if rec.first_ns is None or rec.last_ns is None:
            continue
        off = int(round(hosts[rec.host].clock_offset_s * 1e9))
        lo, hi = rec.first_ns - off, rec.last_ns - off
        if rec.host in spans:
            lo, hi = min(lo, spans[rec.host][0]), max(hi, spans[rec.host][1])
        spans[rec.host] = (lo, hi)
    tl = Timeline(packets=tl_packets, hosts=hosts, settings=settings, spans=spans)
    tl.delivery = match_delivery(tl)
    events = detect_events(tl) if len(tl_packets) else empty_events()
    records = [i.record for i in inputs]
    ctx = Context(tl=tl, events=events, captures=records)
    dx: Diagnosis = diagnose(ctx)
    firsts = [lo for lo, _ in spans.values()]
    t0 = min(firsts) if firsts else 0
    paths = summarize_paths(tl)
    series = build_series(tl, inputs, hosts, t0)
    return Analysis(
        captures=records, hosts=hosts, packets=tl_packets, events=events, verdict=dx.verdict,
        findings=dx.findings, ruled_out=dx.ruled_out, caveats=dx.caveats, paths=paths, series=series, t0_ns=t0,
        settings=settings,
    )


def _add_peer_identity(hosts: dict[str, HostInfo], inputs: list[CaptureInput], packets: pd.DataFrame) -> None:
    """Peer names, nicknames and short ids from the handshakes, per host (by the addresses it sends from);
    Weave endpoints that belong to no captured host become hosts without captures (named by nickname)."""
    by_addr: dict[str, dict[str, set]] = {}
    for i in inputs:
        for p in i.peers:
            entry = by_addr.setdefault(str(p.get("address", "")), {"names": set(), "nicknames": set(), "short_ids": set()})
            entry["names"].update(p.get("names", []))
            entry["nicknames"].update(p.get("nicknames", []))
            entry["short_ids"].update(p.get("short_ids", []))
    if not packets.empty:  # handshakes in the kept rows (hand-made inputs carry no scan summary)
        named = packets[text(packets["ctl_nickname"]) != ""]
        for addr, nick in zip(text(named["ip_src"]), text(named["ctl_nickname"]), strict=True):
            by_addr.setdefault(addr, {"names": set(), "nicknames": set(), "short_ids": set()})["nicknames"].add(nick)
    owner = {a: h for h, info in hosts.items() for a in info.addresses}
    for addr, entry in by_addr.items():
        host = owner.get(addr)
        if host is None:
            continue
        info = hosts[host]
        info.peer_names = sorted(set(info.peer_names) | entry["names"])
        info.nicknames = sorted(set(info.nicknames) | entry["nicknames"])
        info.short_ids = sorted(set(info.short_ids) | {int(x) for x in entry["short_ids"]})
    if packets.empty:
        return
    # Uncaptured peers: destinations of Weave traffic the captured hosts sent.
    weave = np.isin(text(packets["klass"]), WEAVE_CLASSES)
    src = text(packets["ip_src"])
    dst = text(packets["ip_dst"])
    sent_by_host = np.isin(src, list(owner))
    for addr in sorted(set(dst[weave & sent_by_host]) - set(owner) - {""}):
        entry = by_addr.get(addr, {"names": set(), "nicknames": set(), "short_ids": set()})
        nick = sorted(entry["nicknames"])
        # The NickName comes from the wire: only a plain host name may become a host's name.
        usable = [n for n in nick if SAFE_HOST_NAME.fullmatch(n) and n not in hosts]
        name = usable[0] if usable else addr
        by = "its Weave NickName in a handshake (no capture of it)" if usable else "its address (no capture of it)"
        hosts[name] = HostInfo(name=name, named_by=by, captures=[], addresses=[addr], clock_offset_uncertainty_s=None,
                               clock_source="unknown", peer_names=sorted(entry["names"]), nicknames=nick,
                               short_ids=sorted(int(x) for x in entry["short_ids"]))


def build_series(tl: Timeline, inputs: list[CaptureInput], hosts: dict[str, HostInfo], t0: int) -> dict[str, list[dict[str, Any]]]:
    """Plot data for the HTML report: packet sizes (capped), per-second tx/rx per host, heartbeat ladder."""
    pk = tl.packets
    series: dict[str, list[dict[str, Any]]] = {"packets": [], "rates": [], "heartbeats": []}
    if len(pk):
        klass = text(pk["klass"])
        special = ~np.isin(klass, BULK_CLASSES)
        idx = np.flatnonzero(special)
        rest = np.flatnonzero(~special)
        room = max(0, SERIES_PACKET_CAP - idx.size)
        if rest.size > room:
            rest = rest[np.linspace(0, rest.size - 1, room).astype(int)] if room else rest[:0]
        chosen = np.sort(np.concatenate([idx[:SERIES_PACKET_CAP], rest]))
        sub = pk.iloc[chosen]
        t = np.round((sub["t_ns"].to_numpy() - t0) / 1e9, 6)
        series["packets"] = [
            {"host": h, "capture": c, "t": float(tt), "size": int(s), "class": k, "dir": d, "frame": int(f)}
            for h, c, tt, s, k, d, f in zip(text(sub["host"]), text(sub["capture"]), t, sub["wirelen"].to_numpy(),
                                            klass[chosen], text(sub["dir"]), sub["frame"].to_numpy(), strict=True)
        ]
    series["rates"] = _rates(inputs, hosts, t0)
    series["heartbeats"] = _ladder(tl, t0)
    return series


def _rates(inputs: list[CaptureInput], hosts: dict[str, HostInfo], t0: int) -> list[dict[str, Any]]:
    parts = []
    for i in inputs:
        flows = i.flows_per_second
        if flows is None or flows.empty:
            continue
        host = i.record.host
        addrs = hosts[host].addresses
        off = hosts[host].clock_offset_s
        src = text(flows["ip_src"])
        dst = text(flows["ip_dst"])
        # Flows are counted per whole second of the capture's own clock; a bucket is labelled by the
        # ceiling of its start relative to the analysis start, so the first one is 0, never -1.
        second = np.ceil(flows["second"].to_numpy() - off - t0 / 1e9 - 1e-9).astype("int64")
        frames = flows["frames"].to_numpy()
        parts.append(pd.DataFrame({"host": host, "second": second,
                                   "tx": np.where(np.isin(src, addrs), frames, 0),
                                   "rx": np.where(np.isin(dst, addrs) & ~np.isin(src, addrs), frames, 0)}))
    if not parts:
        return []
    table = pd.concat(parts, ignore_index=True).groupby(["host", "second"], sort=True)[["tx", "rx"]].sum().reset_index()
    return [{"host": h, "second": int(s), "tx": int(a), "rx": int(b)}
            for h, s, a, b in zip(table["host"], table["second"], table["tx"], table["rx"], strict=True)]


def _ladder(tl: Timeline, t0: int) -> list[dict[str, Any]]:
    """Heartbeats sent -> received (`t_received` None when lost or unknown), plus received ones whose sender
    has no capture (`t_sent` None)."""
    pk = tl.packets
    if pk.empty:
        return []
    klass = text(pk["klass"])
    direction = text(pk["dir"])
    hb = np.isin(klass, HEARTBEAT_CLASSES)
    uncaptured_sender = ~np.isin(text(pk["src_host"]), sorted(tl.captured_hosts))
    rows = pk[hb & ((direction == "tx") | ((direction == "rx") & uncaptured_sender))]
    if rows.empty:
        return []
    is_tx = text(rows["dir"]) == "tx"
    t = (rows["t_ns"].to_numpy() - t0) / 1e9
    if not tl.delivery.empty:
        d = tl.delivery.reindex(rows.index)
        delivered = d["delivered"].fillna(False).astype(bool).to_numpy()
        rx_t = (d["rx_t_ns"].fillna(-1).astype("int64").to_numpy() - t0) / 1e9
    else:
        delivered = np.zeros(len(rows), dtype=bool)
        rx_t = np.zeros(len(rows))
    t_sent = [round(float(x), 6) if tx else None for x, tx in zip(t, is_tx, strict=True)]
    t_recv = [round(float(r), 6) if tx and ok else (None if tx else round(float(x), 6))
              for x, r, tx, ok in zip(t, rx_t, is_tx, delivered, strict=True)]
    src = label(text(rows["src_host"]), text(rows["ip_src"]))
    dst = label(text(rows["dst_host"]), text(rows["ip_dst"]))
    kind = np.where(text(rows["klass"]) == "weave.fastdp.heartbeat", "fastdp", "sleeve")
    # Without the receiver's capture an unreceived heartbeat is of unknown fate, not lost.
    seen_by_receiver = np.isin(text(rows["dst_host"]), sorted(tl.captured_hosts))
    return [
        {"src_host": str(a), "dst_host": str(b), "kind": str(k), "t_sent": ts, "t_received": tr, "frame": int(f),
         "capture": str(c), "size": int(z), "receiver_captured": bool(rc)}
        for a, b, k, ts, tr, f, c, z, rc in zip(src, dst, kind, t_sent, t_recv, rows["frame"].to_numpy(),
                                                text(rows["capture"]), rows["wirelen"].to_numpy(),
                                                seen_by_receiver, strict=True)
    ]
