"""Rule: UDP 6783 (sleeve) is dropped: the control connection works, sleeve heartbeats never arrive."""

from __future__ import annotations

from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import control_counts, heartbeat_paths


def check(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    connected = not ctx.of("tcp.connected").empty or (ctx.packets["l4_payload_len"] > 0).any() if not ctx.packets.empty else False
    for p in heartbeat_paths(ctx, "weave.sleeve.heartbeat"):
        if not p.failed or p.sent < 2:
            continue
        resets = ctx.of("tcp.reset", "tcp.reset_early")
        redials = ctx.of("tcp.connect_attempt")
        conf = 0.85 if p.receiver_captured else 0.55
        counts = control_counts(ctx)
        facts: dict[str, object] = {"path": p.name, "heartbeats_sent": p.sent, "heartbeats_received": p.received,
                                    **counts, "port": ctx.settings.weave_port, "control_connected": bool(connected)}
        msg = (f"{p.sent} sleeve heartbeats {p.name} (UDP {ctx.settings.weave_port}) "
               + ("never arrived" if p.receiver_captured else "were never acked")
               + (" while the TCP control connection worked" if connected else "")
               + (f"; {counts['resets']} of {counts['connections']} connections were reset and redialled"
                  if counts["resets"] else "") + ".")
        findings.append(ctx.finding(RULE, confidence=conf, message=msg, facts=facts,
                                    evidence=[ctx.of("sleeve.heartbeat_lost").iloc[:3],
                                              ctx.of("sleeve.heartbeat_sent").iloc[:2], resets.iloc[:2],
                                              redials.iloc[1:3]],
                                    hosts=[p.src, p.dst], path=p.name))
    return findings


RULE = Rule(
    id="sleeve-port-blocked",
    title="Sleeve port UDP {weave_port} blocked",
    kind=FAULT,
    needs=("sleeve.heartbeat_sent", "sleeve.heartbeat_lost", "tcp.reset", "tcp.connect_attempt"),
    facts=(
        "path", "port", "heartbeats_sent", "heartbeats_received", "control_connected", "connections",
        "resets", "syn_attempts",
    ),
    fix="Open UDP {port} (and UDP {fastdp_port}) between the hosts in both directions, beside TCP {port}.",
    not_found="sleeve heartbeats arrived (or were acked) on every path that sent them",
    check=check,
)
