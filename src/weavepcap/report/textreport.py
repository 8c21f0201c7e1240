"""The terminal summary: verdict, hosts, the story in runs, the path matrix, the most telling evidence, the fix."""

from __future__ import annotations

from typing import Any

from weavepcap.report.matrix import render_matrix_text
from weavepcap.settings import DEFAULT_SETTINGS

EVIDENCE_SHOWN = 3
STORY_SHOWN = 8  # runs of events in the terminal; the report and the JSON have them all
VXLAN_PORT_HINT = "udp.dstport == "


def _clean(value: object) -> str:
    """Capture-derived text on one line without control characters (it may come from packets)."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(value))


def render_text(doc: dict[str, Any]) -> str:
    """A short readable summary of the JSON document (the presenter computes nothing)."""
    v = doc["verdict"]
    lines: list[str] = []
    kind = "FAULT" if v.get("is_fault") else "STATUS"
    lines.append(f"Verdict ({kind}): {v['root_cause']}  (confidence {float(v['confidence']):.2f})")
    lines.append(f"  {_clean(v['headline'])}")
    when = v.get("started_at") or "n/a"
    hosts = ", ".join(_clean(h) for h in v.get("hosts") or []) or "n/a"
    lines.append(f"When: {when}   Hosts: {hosts}" + (f"   Path: {_clean(v['path'])}" if v.get("path") else ""))
    lines.append("")
    lines.append("Hosts:")
    for h in doc.get("hosts", []):
        unc = h.get("clock_offset_uncertainty_s")
        clock = ("clock reference" if h.get("clock_reference") else
                 f"clock {h['clock_offset_s']:+.6f} s" + (f" +/- {unc:.6f} s" if unc is not None else " (unknown)")
                 + f" ({h.get('clock_source', '')})")
        caps = ", ".join(_clean(c) for c in h.get("captures", [])) or "no capture"
        addrs = ", ".join(h.get("addresses", [])) or "address unknown"
        lines.append(f"  {_clean(h['name'])}: {addrs}; {caps}; {clock}")
        if h.get("named_by"):
            lines.append(f"    named by {_clean(h['named_by'])}")
    findings = doc.get("findings", [])
    top = findings[0] if findings else None
    if top and top.get("evidence"):
        lines.append("")
        lines.append(f"Evidence ({min(EVIDENCE_SHOWN, len(top['evidence']))} of {top.get('evidence_total', 0)}):")
        needs_decode_as = False
        for i, e in enumerate(top["evidence"][:EVIDENCE_SHOWN], 1):
            lines.append(f"  {i}. {_clean(e['capture'])} frame {e['frame']} at {e['time']} ({_clean(e['host'])})")
            if e.get("note"):
                lines.append(f"     {_clean(e['note'])}")
            lines.append(f"     Wireshark filter: {_clean(e['filter'])}")
            needs_decode_as |= VXLAN_PORT_HINT in str(e.get("filter", ""))
        if needs_decode_as:
            port = int(doc.get("settings", {}).get("fastdp_port", DEFAULT_SETTINGS.fastdp_port))
            lines.append(f"     (UDP {port} is VXLAN: in Wireshark use Decode As... UDP port {port} -> VXLAN; "
                         f"tshark -d udp.port=={port},vxlan)")
    if top and top.get("facts"):
        facts = ", ".join(f"{k}={_clean(val)}" for k, val in top["facts"].items() if not isinstance(val, dict | list))
        lines.append("")
        lines.append(f"Facts: {facts}")
    if v.get("fix"):
        lines.append("")
        lines.append(f"Fix: {_clean(v['fix'])}")
    others = [f for f in findings[1:]]
    if others:
        lines.append("")
        lines.append("Other findings: " + "; ".join(f"{f['rule']} ({float(f['confidence']):.2f})" for f in others))
    ruled = doc.get("ruled_out", [])
    if ruled:
        lines.append(f"Ruled out: {', '.join(r['rule'] for r in ruled)}")
    matrix = render_matrix_text(doc.get("paths") or [], [str(h["name"]) for h in doc.get("hosts", [])], _clean)
    if matrix:
        lines.append("")
        lines.append("Paths (rows send, columns receive; heartbeats sent/received; path MTU [delivered, refused]; "
                     "! = broken):")
        lines.extend(matrix)
    lines.extend(_story(doc))
    caveats = doc.get("caveats", [])
    if caveats:
        lines.append("")
        lines.append("Caveats:")
        lines.extend(f"  - {_clean(c)}" for c in caveats)
    return "\n".join(lines) + "\n"


def _story(doc: dict[str, Any]) -> list[str]:
    """The timeline's runs (repeats collapsed): those citing the top finding's evidence, then the earliest."""
    runs = doc.get("timeline_runs") or []
    if not runs:
        return []
    timeline = doc.get("timeline") or []
    findings = doc.get("findings") or []
    cited = {(str(e.get("capture")), int(e.get("frame", 0))) for e in (findings[0].get("evidence") or [])} if findings else set()

    def cites(run: dict[str, Any]) -> bool:
        return any((str(timeline[i].get("capture")), int(timeline[i].get("frame", 0))) in cited
                   for i in run.get("members", []) if i < len(timeline))

    chosen = [i for i, r in enumerate(runs) if cites(r)][:STORY_SHOWN]
    for i in range(len(runs)):
        if len(chosen) >= STORY_SHOWN:
            break
        if i not in chosen:
            chosen.append(i)
    events = sum(int(r.get("count", 1)) for r in runs)
    shown = f"{len(chosen)} of {len(runs)} rows" if len(chosen) < len(runs) else f"{len(runs)} rows"
    lines = ["", f"Story ({events} events in {len(runs)} runs; {shown}, evidence first, then the earliest):"]
    for i in sorted(chosen):
        r = runs[i]
        t = r.get("t")
        when = (f"+{float(t):.3f}s" if isinstance(t, int | float) else "?").rjust(9)
        if int(r.get("count", 1)) > 1:
            t_last = r.get("t_last")
            until = f" until +{float(t_last):.3f}s" if isinstance(t_last, int | float) else ""
            where = f"{_clean(r.get('capture'))} frames {r.get('first_frame')}-{r.get('last_frame')}"
            lines.append(f"  {when}  {_clean(r.get('message'))}  x{r.get('count')}{until}  [{where}]")
        else:
            lines.append(f"  {when}  {_clean(r.get('message'))}  [{_clean(r.get('capture'))} frame {r.get('first_frame')}]")
    if len(chosen) < len(runs):
        lines.append(f"  ... {len(runs) - len(chosen)} more runs in the HTML report's Story and the JSON timeline_runs")
    return lines
