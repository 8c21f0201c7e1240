"""`weavepcap classify`: per capture, the Weave traffic classes, peers, heartbeat sizes, ICMP MTUs and damage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from weavepcap.commands._common import one_line_errors, parse_specs, progress_bar
from weavepcap.errors import CaptureError, ExitCode, UsageError
from weavepcap.scan import DISSECTORS, ScanResult, TimelineWriter, scan_capture
from weavepcap.settings import DEFAULT_SETTINGS, Settings

FORMAT_VERSION = 1  # bump on any incompatible change of the JSON below (README, section classify)
FORMATS = ("text", "json")
PROGRESS_MIN_BYTES = 64 * 1024 * 1024  # smaller files finish before a bar would help


@one_line_errors
def command(
    captures: Annotated[list[str], typer.Argument(help="Captures: PATH, HOST=PATH or - (standard input).",
                                                  metavar="CAPTURE")],
    output_format: Annotated[str, typer.Option("--format", help="text or json.", metavar="text|json")] = "text",
    timeline: Annotated[Path | None, typer.Option(
        "--timeline", help="Also write the per-frame table of every capture to FILE.csv or FILE.parquet.",
        metavar="FILE")] = None,
    dissector: Annotated[str, typer.Option(
        "--dissector", help="native (fast, ours) or tshark (Wireshark's dissectors: slow, independent).",
        metavar="native|tshark")] = "native",
    weave_port: Annotated[int, typer.Option(
        "--weave-port", help="Weave's TCP control / UDP sleeve port; fast datapath VXLAN uses it + 1.",
        metavar="N")] = 6783,
    vxlan_ports: Annotated[list[int] | None, typer.Option(
        "--vxlan-port", help="Another UDP port carrying non-Weave VXLAN (adds to 4789 and 8472; repeatable).",
        metavar="N")] = None,
) -> None:
    """Name the traffic in each capture: Weave control, sleeve, fast datapath, ESP, ICMP, fragments, overlays."""
    if output_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {output_format!r}")
    if dissector not in DISSECTORS:
        raise UsageError(f"--dissector must be one of {', '.join(DISSECTORS)}, not {dissector!r}")
    if timeline is not None and timeline.suffix.lower() not in TimelineWriter.SUFFIXES:
        raise UsageError(f"--timeline {timeline}: the file name must end in .csv or .parquet")
    for port in (weave_port, weave_port + 1, *(vxlan_ports or ())):
        if not 0 < port < 65536:
            raise UsageError(f"port {port} is out of range (weave port must be 1..65534, VXLAN ports 1..65535)")
    settings = Settings(weave_port=weave_port,
                        vxlan_ports=DEFAULT_SETTINGS.vxlan_ports | frozenset(vxlan_ports or ()))
    specs = parse_specs(captures)
    if sum(1 for s in specs if s.path == "-") > 1:
        raise UsageError("standard input (-) can be named only once")

    writer = _timeline_writer(timeline) if timeline is not None else None
    results: list[ScanResult] = []
    failed: list[CaptureError] = []
    for spec in specs:
        try:
            with progress_bar(spec, PROGRESS_MIN_BYTES) as progress:
                # Timeline rows stream to the file as they settle: memory does not grow with the capture.
                result = scan_capture(spec, settings, keep="all" if writer else "none", progress=progress,
                                      dissector=dissector, flows=False, sink=writer.write if writer else None)
        except CaptureError as exc:
            if len(specs) == 1:
                raise
            print(f"weavepcap: error: {exc}", file=sys.stderr)
            failed.append(exc)
            continue
        _warn_damage(result)
        results.append(result)

    if output_format == "json":
        document = {"format_version": FORMAT_VERSION, "captures": [r.to_dict() for r in results]}
        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(render_text(results), nl=False)
    if writer is not None:
        rows = writer.close()
        print(f"weavepcap: wrote {rows} rows to {timeline}", file=sys.stderr)
    if failed:
        raise typer.Exit(code=int(ExitCode.BAD_INPUT))


def _timeline_writer(path: Path) -> TimelineWriter:
    """Open the timeline file now, so an unwritable path fails before any capture is read."""
    try:
        path.open("wb").close()
    except OSError as exc:
        raise UsageError(f"--timeline {path}: cannot write: {exc.strerror or exc}") from None
    return TimelineWriter(path)


def _warn_damage(result: ScanResult) -> None:
    damage = result.summary.damage
    if damage:
        first = damage[0]
        where = f"frame {first.frame}" if first.frame is not None else f"byte offset {first.offset}"
        more = f" (+{len(damage) - 1} more)" if len(damage) > 1 else ""
        outcome = ("frames before the damage were analysed" if any(d.stopped_reading for d in damage)
                   else "every frame was read")
        print(f"weavepcap: warning: {result.info.path}: {where}: {_printable(first.message)}{more}; {outcome}",
              file=sys.stderr)




# --- text output ------------------------------------------------------------------------------------


def _printable(text: object) -> str:
    """Untrusted text (host names from handshakes, file names) without control characters."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in str(text))


def _span(first: str | None, last: str | None, duration: object) -> str:
    if first is None:
        return "no frames"
    return f"{first} .. {last} ({duration} s)"


def render_text(results: list[ScanResult]) -> str:
    """The human summary: one block per capture."""
    lines: list[str] = []
    for result in results:
        d = result.to_dict()
        by = f", named by {_printable(d['named_by'])}" if d.get("named_by") else ""
        lines.append(f"{_printable(d['path'])}  (host {_printable(d['host'])}{by})")
        lines.append(f"  frames {d['frames']:,}  bytes {d['bytes']:,}  "
                     f"{_span(d['first_time'], d['last_time'], d['duration_s'])}")  # type: ignore[arg-type]
        lines.append(f"  link types: {', '.join(d['link_types']) or '-'}")  # type: ignore[arg-type]
        lines.append("  classes:")
        classes: dict[str, dict[str, int]] = d["classes"]  # type: ignore[assignment]
        for name, counts in classes.items():
            lines.append(f"    {name:<30} {counts['frames']:>10,} frames {counts['bytes']:>14,} bytes")
        if not classes:
            lines.append("    (no frames)")
        lines.extend(_peer_lines(result))
        for hb in result.summary.fastdp_heartbeats:
            lines.append(f"  fastdp heartbeats: IP {hb['ip_len']} / frame {hb['frame_len']} bytes -> overlay MTU "
                         f"{hb['overlay_mtu']} ({hb['frames']} frames)")
        for title, key, entries in (("ICMP frag-needed", "next_hop_mtu", result.summary.icmp_frag_needed),
                                    ("ICMPv6 packet-too-big", "mtu", result.summary.icmpv6_packet_too_big)):
            for entry in entries:
                lines.append(f"  {title}: MTU {entry[key]} ({entry['frames']} frames)")
                for q in entry["quoted"][:5]:  # type: ignore[index]
                    label = f" [{q['class']}]" if q["class"] not in ("", "other") else ""
                    lines.append(f"    quoting {q['src']}:{q['sport']} -> {q['dst']}:{q['dport']} proto {q['proto']} "
                                 f"IP length {q['ip_len']}{label} x{q['frames']}")
        if result.summary.snaplen_cut_frames:
            lines.append(f"  snap length: {result.summary.snaplen_cut_frames:,} frames were captured shorter than "
                         "they were on the wire")
        trains = result.summary.fragment_trains
        if trains:
            lines.append("  fragment trains: " + ", ".join(f"{k} {v}" for k, v in trains.items()))
        for damage in result.summary.damage:
            where = f"frame {damage.frame}" if damage.frame is not None else f"byte offset {damage.offset}"
            lines.append(f"  damage: {where}: {_printable(damage.message)}")
        for caveat in result.summary.uncertain:
            lines.append(f"  caveat: {caveat['class']} ({caveat['frames']} frames): {caveat['reason']}")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def _peer_lines(result: ScanResult) -> list[str]:
    peers = result.summary.peers
    if not peers:
        return ["  Weave peers: none seen"]
    lines = ["  Weave peers:"]
    for peer in peers:
        parts = [f"    {peer['address']}"]
        if peer["short_ids"]:
            parts.append("short ids " + ",".join(str(s) for s in peer["short_ids"]))  # type: ignore[attr-defined]
        if peer["names"]:
            parts.append("name " + ",".join(_printable(s) for s in peer["names"]))  # type: ignore[attr-defined]
        if peer["nicknames"]:
            parts.append("nickname " + ",".join(_printable(s) for s in peer["nicknames"]))  # type: ignore[attr-defined]
        parts.append(f"sent {peer['frames_sent']} received {peer['frames_received']} Weave frames")
        lines.append("  ".join(parts))
    return lines
