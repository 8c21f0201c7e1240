"""The analysis data model: evidence pointers, findings, the verdict, hosts, paths and captures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

FAULT = "fault"  # a rule kind: names a root cause
STATUS = "status"  # a rule kind: healthy / no-weave-traffic / undetermined


def iso_utc(ts_ns: int | None) -> str | None:
    """ISO-8601 UTC with microseconds and a `Z`, or None."""
    if ts_ns is None:
        return None
    seconds, rest_ns = divmod(int(ts_ns), 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest_ns // 1000:06d}Z"


@dataclass(frozen=True)
class Evidence:
    """One frame a finding rests on: checkable in Wireshark by capture file and 1-based frame number."""

    capture: str  # capture display name (file name)
    host: str
    frame: int
    ts_ns: int  # aligned timestamp (ns since the epoch, reference host's clock)
    filter: str  # Wireshark display filter that shows it
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "capture": self.capture,
            "host": self.host,
            "frame": self.frame,
            "time": iso_utc(self.ts_ns),
            "filter": self.filter,
            "note": self.note,
        }


@dataclass
class Finding:
    """A rule's conclusion: confidence, the numbers it quotes, its evidence and the fix."""

    rule: str
    title: str
    confidence: float
    message: str
    facts: dict[str, object]
    fix: str
    evidence: list[Evidence]
    evidence_total: int
    hosts: tuple[str, ...] = ()
    path: str | None = None
    started_ns: int | None = None
    is_fault: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "title": self.title,
            "confidence": round(float(self.confidence), 3),
            "message": self.message,
            "facts": self.facts,
            "fix": self.fix,
            "evidence": [e.to_dict() for e in self.evidence],
            "evidence_total": self.evidence_total,
        }


@dataclass(frozen=True)
class RuledOut:
    """A fault rule that ran and found nothing, with the reason."""

    rule: str
    title: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "title": self.title, "reason": self.reason}


@dataclass
class Verdict:
    """The ranked answer: root cause (a rule id), confidence, one-sentence headline and the fix."""

    root_cause: str
    confidence: float
    headline: str
    fix: str
    started_ns: int | None
    hosts: tuple[str, ...]
    path: str | None
    is_fault: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "root_cause": self.root_cause,
            "confidence": round(float(self.confidence), 3),
            "headline": self.headline,
            "fix": self.fix,
            "started_at": iso_utc(self.started_ns),
            "hosts": list(self.hosts),
            "path": self.path,
            "is_fault": self.is_fault,
        }


@dataclass
class HostInfo:
    """A host of the cluster: its captures, the addresses it sends from and its clock offset."""

    name: str
    captures: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    clock_offset_s: float = 0.0  # host clock minus reference clock; aligned time = capture time - offset
    clock_offset_uncertainty_s: float | None = 0.0
    clock_reference: bool = False
    clock_source: str = "reference"  # reference | estimated | forced | unknown
    clock_matches: int = 0  # packets matched across hosts to estimate the offset
    peer_names: list[str] = field(default_factory=list)
    nicknames: list[str] = field(default_factory=list)
    short_ids: list[int] = field(default_factory=list)
    named_by: str = ""  # which rule named the host: HOST=, pcapng metadata, the file name, a nickname

    def to_dict(self) -> dict[str, object]:
        unc = self.clock_offset_uncertainty_s
        return {
            "name": self.name,
            "named_by": self.named_by,
            "addresses": list(self.addresses),
            "captures": list(self.captures),
            "clock_offset_s": round(self.clock_offset_s, 9),
            "clock_offset_uncertainty_s": None if unc is None else round(unc, 9),
            "clock_reference": self.clock_reference,
            "clock_source": self.clock_source,
            "clock_matches": self.clock_matches,
            "peer_names": list(self.peer_names),
            "nicknames": list(self.nicknames),
            "short_ids": list(self.short_ids),
        }


@dataclass
class CaptureRecord:
    """One capture file as the analysis saw it."""

    path: str
    name: str
    host: str
    frames: int
    bytes: int
    first_ns: int | None
    last_ns: int | None
    link_types: list[str]
    classes: dict[str, dict[str, int]]
    damage: list[dict[str, object]]
    clock_offset_s: float = 0.0
    named_by: str = ""  # which naming rule gave `host` (weavepcap.naming)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "name": self.name,
            "host": self.host,
            "named_by": self.named_by,
            "frames": self.frames,
            "bytes": self.bytes,
            "first_time": iso_utc(self.first_ns),
            "last_time": iso_utc(self.last_ns),
            "link_types": list(self.link_types),
            "classes": self.classes,
            "damage": list(self.damage),
            "clock_offset_s": round(self.clock_offset_s, 9),
        }


@dataclass
class PathInfo:
    """One direction between two hosts: the overlay mode seen and what the heartbeats say about MTU."""

    src_host: str
    dst_host: str
    src_addr: str
    dst_addr: str
    mode: str  # fastdp | sleeve | unknown
    heartbeats_sent: int
    heartbeats_received: int
    heartbeat_ip_len: int | None
    overlay_mtu: int | None
    path_mtu_low: int | None
    path_mtu_high: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "src_host": self.src_host,
            "dst_host": self.dst_host,
            "src_addr": self.src_addr,
            "dst_addr": self.dst_addr,
            "mode": self.mode,
            "heartbeats_sent": self.heartbeats_sent,
            "heartbeats_received": self.heartbeats_received,
            "heartbeat_ip_len": self.heartbeat_ip_len,
            "overlay_mtu": self.overlay_mtu,
            "path_mtu_low": self.path_mtu_low,
            "path_mtu_high": self.path_mtu_high,
        }
