"""Wireshark hand-off: every finding's evidence frames (plus context) in one commented pcapng, one interface per source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weavepcap import __version__
from weavepcap.io import open_capture
from weavepcap.io import pcapng_write as pw
from weavepcap.io.records import CaptureSpec
from weavepcap.settings import DEFAULT_SETTINGS, Settings


@dataclass
class _Wanted:
    """The comments one frame of one capture gets (it may be evidence of several findings and context of others)."""

    comments: list[str] = field(default_factory=list)


@dataclass
class HandoffResult:
    """What the hand-off wrote."""

    path: Path
    frames: int  # packets written
    evidence_frames: int  # of those, evidence of at least one finding
    missing: list[tuple[str, int]]  # (capture, frame) cited but not found in the capture file (file changed?)


def write_evidence_pcapng(doc: Mapping[str, Any], out: str | Path, *, context: int = 0,
                          base_dir: str | Path | None = None, settings: Settings = DEFAULT_SETTINGS) -> HandoffResult:
    """Write the evidence frames of every finding of an analysis document (`Analysis.to_dict()`) into one pcapng.

    Each frame carries packet comments naming the finding(s), the host and the original capture and frame
    number; `context` frames before and after each evidence frame come along, commented as context. Frames
    are written in aligned time order (capture time minus the host's clock offset), one interface per source
    capture and link type. Capture paths are the document's, relative to `base_dir` (default: as they are).
    Raises CaptureError (one line) when a source capture cannot be read.
    """
    if context < 0:
        raise ValueError("context must be >= 0")
    fastdp_port = int(doc.get("settings", {}).get("fastdp_port", settings.fastdp_port))
    captures = list(doc.get("captures", []))
    by_name: dict[str, dict[str, Any]] = {}
    for c in captures:
        by_name.setdefault(str(c["name"]), c)
    wanted: dict[str, dict[int, _Wanted]] = {}
    findings = list(doc.get("findings", []))
    cited: list[tuple[str, int, str, str]] = []  # (capture, frame, rule, host) of every evidence item
    for rank, finding in enumerate(findings, 1):
        rule = str(finding.get("rule", ""))
        evidence = list(finding.get("evidence", []))
        for k, e in enumerate(evidence, 1):
            capture, frame = str(e["capture"]), int(e["frame"])
            if capture not in by_name:
                continue
            note = f" — {e['note']}" if e.get("note") else ""
            wanted.setdefault(capture, {}).setdefault(frame, _Wanted()).comments.append(
                f"weavepcap evidence {k}/{len(evidence)} of finding {rank} {rule}{note} "
                f"| host {e.get('host', '')}, {capture} frame {frame}")
            cited.append((capture, frame, rule, str(e.get("host", ""))))
    # Context frames get a comment only where they are not evidence themselves.
    for capture, frame, rule, host in cited:
        slot = wanted[capture]
        for offset in (*range(-context, 0), *range(1, context + 1)):
            near = frame + offset
            if near < 1 or (near in slot and _is_evidence(slot[near])):
                continue
            side = "before" if offset < 0 else "after"
            slot.setdefault(near, _Wanted()).comments.append(
                f"weavepcap context: {abs(offset)} frame(s) {side} evidence {capture} frame {frame} of {rule} "
                f"| host {host}, {capture} frame {near}")
    packets: list[tuple[int, int, int, int, bytes, int, list[str]]] = []  # (t, capture order, frame, iface, ...)
    interfaces: dict[tuple[str, int], int] = {}
    idbs: list[bytes] = []
    missing: list[tuple[str, int]] = []
    evidence_frames = 0
    base = Path(base_dir) if base_dir is not None else None
    for order, (name, frames) in enumerate(sorted(wanted.items())):
        record = by_name[name]
        path = Path(str(record["path"]))
        if base is not None and not path.is_absolute():
            path = base / path
        offset_ns = int(round(float(record.get("clock_offset_s") or 0.0) * 1e9))
        host = str(record.get("host", ""))
        found: set[int] = set()
        with open_capture(CaptureSpec(path=str(path)), settings) as capture:
            last_wanted = max(frames)
            for chunk in capture.chunks():
                numbers = chunk.frame.tolist()
                for i, number in enumerate(numbers):
                    if number not in frames:
                        continue
                    linktype = int(capture.info.interfaces[int(chunk.iface[i])].linktype) \
                        if capture.info.interfaces else int(chunk.linktype[i])
                    key = (name, linktype)
                    if key not in interfaces:
                        interfaces[key] = len(idbs)
                        idbs.append(pw.interface(linktype, name=name, description=f"host {host}: {path}"))
                    comments = list(frames[number].comments)
                    if offset_ns:
                        comments.append(f"time aligned to the reference clock: {name}'s host clock is "
                                        f"{offset_ns / 1e9:+.6f} s ahead")
                    packets.append((int(chunk.ts_ns[i]) - offset_ns, order, number, interfaces[key],
                                    chunk.frame_bytes(i), int(chunk.wirelen[i]), comments))
                    found.add(number)
                    evidence_frames += any(c.startswith("weavepcap evidence") for c in comments)
                if numbers and numbers[-1] >= last_wanted:
                    break  # everything wanted from this capture has been read
        missing.extend((name, f) for f in sorted(frames) if f not in found and _is_evidence(frames[f]))
    packets.sort(key=lambda p: (p[0], p[1], p[2]))
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        handle.write(pw.section_header(f"weavepcap {__version__} evidence hand-off", comment=(
            f"Weave fast datapath is VXLAN on UDP {fastdp_port}: in Wireshark use Decode As... UDP port "
            f"{fastdp_port} -> VXLAN (tshark -d udp.port=={fastdp_port},vxlan). Each packet's "
            "comments name the finding it is evidence of and its original capture and frame number.")))
        for idb in idbs:
            handle.write(idb)
        for t, _, _, iface, data, wirelen, comments in packets:
            handle.write(pw.enhanced_packet(iface, t, data, wirelen, comments))
    return HandoffResult(path=target, frames=len(packets), evidence_frames=evidence_frames, missing=missing)


def _is_evidence(w: _Wanted) -> bool:
    return any(c.startswith("weavepcap evidence") for c in w.comments)
