"""Status: Weave traffic present, fastdp or sleeve working, no fault found."""

from __future__ import annotations

from weavepcap.model import Finding
from weavepcap.rules.base import STATUS, Context, Rule
from weavepcap.rules.common import fastdp_offered_not_working, heartbeat_paths, overlay_facts


def check(ctx: Context) -> list[Finding]:
    if any(f.is_fault for f in ctx.findings_so_far):
        return []
    fast = [p for p in heartbeat_paths(ctx, "weave.fastdp.heartbeat") if p.delivered or p.received or p.acked]
    sleeve = [p for p in heartbeat_paths(ctx, "weave.sleeve.heartbeat") if p.delivered or p.received or p.acked]
    fast_data = ctx.class_frames("weave.fastdp.data")
    sleeve_data = ctx.class_frames("weave.sleeve.data") + ctx.class_frames("weave.sleeve.encrypted")
    esp_in = ctx.of("fastdp.esp_received")
    if not (fast or sleeve or fast_data or sleeve_data or not esp_in.empty):
        return []
    mode = "fastdp" if (fast or fast_data or not esp_in.empty) else "sleeve"
    if mode == "sleeve" and fastdp_offered_not_working(ctx):
        return []  # running on sleeve although fastdp was negotiated: not healthy, and not explained here
    paths = sorted({p.name for p in (fast if mode == "fastdp" else sleeve)})
    facts: dict[str, object] = {"mode": mode, "paths": paths, "fastdp_data_frames": fast_data,
                                "sleeve_data_frames": sleeve_data}
    facts.update(overlay_facts(ctx))
    msg = f"Weave {mode} works" + (f" on {', '.join(paths)}" if paths else "") + "; no fault found."
    hosts = [h for p in (fast or sleeve) for h in (p.src, p.dst)]
    return [ctx.finding(RULE, confidence=0.8, message=msg, facts=facts,
                        evidence=[ctx.of("fastdp.heartbeat_received", "sleeve.heartbeat_received").iloc[:2],
                                  ctx.of("fastdp.heartbeat_acked", "sleeve.heartbeat_acked").iloc[:2],
                                  ctx.of("fastdp.data").iloc[:4], ctx.of("fragments.reassembled").iloc[:1],
                                  ctx.of("fragments.sent").iloc[:1]],
                        hosts=hosts, path=paths[0] if paths else None)]


RULE = Rule(
    id="healthy",
    title="Weave overlay healthy",
    kind=STATUS,
    needs=("fastdp.heartbeat_received", "fastdp.heartbeat_acked", "sleeve.heartbeat_received", "sleeve.heartbeat_acked",
           "fastdp.data"),
    facts=(
        "mode", "paths", "fastdp_data_frames", "sleeve_data_frames", "path_mtu", "heartbeat_ip_len",
        "heartbeat_frame_len", "overlay_mtu",
    ),
    fix="",
    not_found="a fault was found, or no overlay was seen working",
    check=check,
)
