"""Rule: UDP 6784 (fastdp VXLAN) is dropped whatever its size, while sleeve works."""

from __future__ import annotations

from weavepcap.detect.paths import mtu_bounds
from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import heartbeat_paths, overlay_facts


def check(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    sleeve = {(p.src_addr, p.dst_addr): p for p in heartbeat_paths(ctx, "weave.sleeve.heartbeat")}
    for p in heartbeat_paths(ctx, "weave.fastdp.heartbeat"):
        if not p.failed or p.sent == 0:
            continue
        b = mtu_bounds(ctx.tl, p.src_addr, p.dst_addr)
        if b.icmp_mtu is not None and b.icmp_mtu < p.ip_len:
            continue  # too big, not blocked
        fits = b.low is not None and b.low >= p.ip_len
        sp = sleeve.get((p.src_addr, p.dst_addr))
        sleeve_ok = bool(sp and (sp.delivered or sp.received or sp.acked))
        if not fits and not sleeve_ok:
            continue
        if not fits and b.low is not None and b.low < p.ip_len:
            continue  # the path is proven smaller than the heartbeat: a size problem
        conf = 0.85 if (fits and p.receiver_captured) else 0.7 if fits else 0.5
        facts: dict[str, object] = {**overlay_facts(ctx), "path": p.name, "heartbeats_sent": p.sent,
                                    "heartbeats_received": p.received, "heartbeat_ip_len": p.ip_len,
                                    "heartbeat_frame_len": p.frame_len, "overlay_mtu": p.overlay_mtu,
                                    "path_mtu_low": b.low, "sleeve_working": sleeve_ok,
                                    "port": ctx.settings.fastdp_port}
        probes = ctx.of("sleeve.pmtu_probe_received")
        if not probes.empty:  # the largest probe that arrived proves the size fits
            sizes = [int(a.get("ip_len", 0)) for a in probes["attrs"]]
            probes = probes.assign(_s=sizes).sort_values("_s", ascending=False, kind="stable").drop(columns="_s")
        msg = (f"{p.sent} fastdp heartbeats {p.name} (UDP {ctx.settings.fastdp_port}, IP length {p.ip_len}) "
               + ("never arrived" if p.receiver_captured else "were never acked")
               + (f", though packets of {b.low} bytes cross the path" if fits else "")
               + (f"; sleeve on UDP {ctx.settings.weave_port} works" if sleeve_ok else "")
               + f": UDP {ctx.settings.fastdp_port} is blocked.")
        findings.append(ctx.finding(RULE, confidence=conf, message=msg, facts=facts,
                                    evidence=[ctx.of("fastdp.heartbeat_lost").iloc[:3],
                                              ctx.of("fastdp.heartbeat_sent").iloc[:3], probes.iloc[:1],
                                              ctx.of("sleeve.heartbeat_received", "sleeve.heartbeat_acked").iloc[:2],
                                              ctx.of("mode.sleeve_after_fastdp")],
                                    hosts=[p.src, p.dst], path=p.name))
    return findings


RULE = Rule(
    id="fastdp-port-blocked",
    title="Fast datapath port UDP {fastdp_port} blocked",
    kind=FAULT,
    needs=("fastdp.heartbeat_sent", "fastdp.heartbeat_lost", "sleeve.heartbeat_received", "sleeve.heartbeat_acked",
           "sleeve.pmtu_probe_received"),
    facts=(
        "path", "port", "heartbeats_sent", "heartbeats_received", "path_mtu_low", "sleeve_working",
        "path_mtu", "heartbeat_ip_len", "heartbeat_frame_len", "overlay_mtu",
    ),
    fix=("Open UDP {port} between the hosts (firewalld / iptables / cloud security group), in both directions; "
         "sleeve keeps traffic flowing meanwhile, slowly."),
    not_found="every fastdp heartbeat path either worked, or failed for a reason of size",
    check=check,
)
