"""Status: nothing of Weave in the captures; say what overlay traffic there is instead."""

from __future__ import annotations

from weavepcap.classes import WEAVE_CLASSES
from weavepcap.model import Finding
from weavepcap.rules.base import STATUS, Context, Rule

OTHER_OVERLAYS = {"overlay.vxlan": "VXLAN (not Weave's port)", "overlay.geneve": "Geneve"}


def check(ctx: Context) -> list[Finding]:
    weave = sum(ctx.class_frames(k) for k in WEAVE_CLASSES)
    if weave:
        return []
    others = {name: ctx.class_frames(k) for k, name in OTHER_OVERLAYS.items() if ctx.class_frames(k)}
    frames = sum(c.frames for c in ctx.captures)
    pk = ctx.packets
    ports: list[int] = []
    if not pk.empty and others:
        ov = pk[pk["klass"].astype(str).isin(list(OTHER_OVERLAYS))]
        ports = sorted({int(p) for p in ov["dport"].unique() if int(p) > 0})
    other_text = ", ".join(f"{n} frames of {name}" for name, n in others.items())
    msg = (f"No Weave traffic in {frames} frames" + (f"; instead: {other_text}" if others else "")
           + (f" on UDP port(s) {', '.join(map(str, ports))}" if ports else "") + ".")
    facts: dict[str, object] = {"frames": frames, "other_overlays": others, "overlay_ports": ports}
    icmp = ctx.of("icmp.frag_needed")
    if not icmp.empty:
        facts["icmp_frag_needed"] = len(icmp)
        facts["icmp_mtus"] = sorted({int(a["mtu"]) for a in icmp["attrs"]})
        msg += f" ICMP too-big seen (MTU {', '.join(map(str, facts['icmp_mtus']))}): the other overlay has an MTU problem."
    return [ctx.finding(RULE, confidence=0.9, message=msg, facts=facts, evidence=[icmp.iloc[:3]], hosts=[], path=None)]


RULE = Rule(
    id="no-weave-traffic",
    title="No Weave traffic in the captures",
    kind=STATUS,
    needs=("icmp.frag_needed",),
    fix="Capture on the hosts' underlay interfaces while Weave runs (TCP/UDP 6783, UDP 6784, ESP), or analyse the overlay you have with a tool for it.",
    not_found="Weave traffic is present",
    check=check,
)
