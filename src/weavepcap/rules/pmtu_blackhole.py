"""Rule: large DF packets vanish on a path without any ICMP while small ones pass (a PMTU black hole)."""

from __future__ import annotations

from weavepcap.detect.base import text
from weavepcap.detect.paths import mtu_bounds
from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import overlay_limits


def check(ctx: Context) -> list[Finding]:
    if not ctx.of("icmp.frag_needed").empty:
        return []  # an ICMP too-big was sent: the path is not black-holed (another rule reads it)
    pk = ctx.packets
    d = ctx.tl.delivery
    if pk.empty or d.empty:
        return []
    lost_idx = d.index[d["checkable"].astype(bool) & ~d["delivered"].astype(bool)]
    lost = pk.loc[lost_idx]
    lost = lost[lost["ip_df"].to_numpy().astype(bool)]
    findings: list[Finding] = []
    if lost.empty:
        return []
    for (s, dd), g in lost.groupby([lost["ip_src"].astype(str), lost["ip_dst"].astype(str)], sort=False):
        b = mtu_bounds(ctx.tl, s, dd)
        if b.low is None or b.smallest_lost is None or b.smallest_lost <= b.low:
            continue
        big = g[g["ip_len"].to_numpy() > b.low]
        classes = sorted(set(text(big["klass"])))
        src = str(big["src_host"].iloc[0] or s)
        dst = str(big["dst_host"].iloc[0] or dd)
        only_heartbeats = classes == ["weave.fastdp.heartbeat"]
        facts: dict[str, object] = {
            "path": f"{src} -> {dst}", "path_mtu": b.low, "path_mtu_low": b.low, "path_mtu_high": b.smallest_lost - 1,
            "smallest_lost_ip_len": b.smallest_lost, "largest_delivered_ip_len": b.low, "lost_frames": int(len(big)),
            "lost_classes": classes, **overlay_limits(b.low),
        }
        msg = (f"{len(big)} DF packets {src} -> {dst} of IP length {b.smallest_lost} and more vanished with no ICMP "
               f"too-big anywhere, while packets up to {b.low} bytes arrived ({', '.join(classes)}).")
        ev = ctx.events
        cite = ev[ev["event"].isin(("fastdp.heartbeat_lost", "sleeve.heartbeat_lost")) & (ev["src_host"] == src)] \
            if not ev.empty else ev
        probes = ctx.of("sleeve.pmtu_probe")
        probes = probes[[int(a.get("ip_len", 0)) > b.low for a in probes["attrs"]]] if not probes.empty else probes
        verified = ctx.of("sleeve.pmtu_verified")
        conf = 0.55 if only_heartbeats else 0.85
        findings.append(ctx.finding(RULE, confidence=conf, message=msg, facts=facts,
                                    evidence=[probes.iloc[:2], cite.iloc[:2], verified.iloc[:1], probes.iloc[2:]],
                                    hosts=[src, dst], path=f"{src} -> {dst}"))
    return sorted(findings, key=lambda f: -f.confidence)[:1] if findings else []


RULE = Rule(
    id="pmtu-blackhole",
    title="PMTU black hole: large DF packets vanish without ICMP",
    kind=FAULT,
    needs=("sleeve.pmtu_probe", "sleeve.pmtu_verified", "fastdp.heartbeat_lost", "icmp.frag_needed"),
    fix=("Find the hop with the smaller MTU (path MTU about {path_mtu}) and either raise its MTU or make it send ICMP "
         "fragmentation-needed (do not filter ICMP type 3 code 4 / ICMPv6 type 2); meanwhile set the overlay MTU to "
         "at most {max_overlay_mtu} (WEAVE_MTU; {max_overlay_mtu_encrypted} with encryption)."),
    not_found="no DF packet larger than what got through was lost without an ICMP too-big (or no receiver capture)",
    check=check,
)
