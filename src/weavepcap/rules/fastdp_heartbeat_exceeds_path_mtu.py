"""Rule: fastdp heartbeats (IP = overlay MTU + 50) are bigger than the path MTU, so fastdp never comes up."""

from __future__ import annotations

import pandas as pd

from weavepcap.classes import QUOTE_KIND
from weavepcap.detect.base import text
from weavepcap.detect.paths import mtu_bounds
from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import heartbeat_paths, overlay_limits
from weavepcap.wire import ETH_HDR, max_overlay_mtu, overlay_mtu_of_heartbeat

FASTDP_HB = "weave.fastdp.heartbeat"


def _icmp_for(ctx: Context, src_addr: str | None = None) -> pd.DataFrame:
    icmp = ctx.of("icmp.frag_needed")
    if icmp.empty:
        return icmp
    quoted = [str(a.get("quoted", "")) for a in icmp["attrs"]]
    # Encrypted fastdp carries its heartbeats in ESP (IP protocol 50) between the peers.
    keep = pd.Series([(q in QUOTE_KIND and QUOTE_KIND[q].fastdp) or q == "esp" for q in quoted], index=icmp.index)
    return icmp[keep]


def check(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    icmp = _icmp_for(ctx)
    paths = heartbeat_paths(ctx, FASTDP_HB)
    hb_sent = ctx.of("fastdp.heartbeat_sent", "fastdp.heartbeat_size")
    # 1. ICMP frag-needed / too-big quoting fastdp packets bigger than the MTU it names.
    if not icmp.empty:
        mtus = [int(a["mtu"]) for a in icmp["attrs"]]
        qlens = [int(a["quoted_ip_len"]) for a in icmp["attrs"]]
        over = [m < q for m, q in zip(mtus, qlens, strict=True)]
        if any(over):
            icmp = icmp[over]
            # Most telling first: a router's ICMP whose quoted heartbeat is in a capture, then the host's own.
            rank = [(a["sender"] != "router", int(a["quoted_frame"]) <= 0) for a in icmp["attrs"]]
            icmp = icmp.assign(_rank=rank).sort_values(["_rank", "t_ns"], kind="stable").drop(columns="_rank")
            attrs = list(icmp["attrs"])
            path_mtu = min(int(a["mtu"]) for a in attrs)
            hb_len = max(int(a["quoted_ip_len"]) for a in attrs)
            sender = attrs[0]["sender"]
            first = icmp.iloc[0]
            victim = first["dst_host"] or first["host"]  # the ICMP goes back to the heartbeat's sender
            ipv6 = ":" in str(attrs[0].get("sender_addr", ""))
            encrypted = all(a.get("quoted") == "esp" for a in attrs)
            # ESP: IP = 52 + roundup4(MTU + 32), so the overlay MTU is at most IP - 84 (wire-format §4.2).
            overlay = overlay_mtu_of_heartbeat(hb_len, encrypted=encrypted, ipv6=ipv6)
            path = next((p for p in paths if p.src == victim), None)
            delivered = bool(path and (path.delivered or path.acked or path.received))
            quoted_frames = {(a["quoted_capture"], int(a["quoted_frame"])) for a in attrs if int(a["quoted_frame"]) > 0}
            hb_rows = hb_sent[[(c, int(f)) in quoted_frames for c, f in zip(text(hb_sent["capture"]), hb_sent["frame"], strict=True)]] \
                if not hb_sent.empty else hb_sent
            sleeve = ctx.of("mode.sleeve_after_fastdp")
            lost = ctx.of("fastdp.heartbeat_lost")
            facts: dict[str, object] = {
                "path_mtu": path_mtu,
                "heartbeat_ip_len": hb_len,
                "heartbeat_frame_len": hb_len + ETH_HDR,
                "overlay_mtu": overlay,
                **overlay_limits(path_mtu, ipv6),
                "icmp_sender": "the host itself" if sender == "self" else f"router {attrs[0]['sender_addr']}",
                "icmp_count": len(icmp),
                "fastdp_established": delivered,
                "sleeve_fallback": not sleeve.empty,
                "encrypted": encrypted,
            }
            kind = "encrypted fastdp (ESP) packets" if encrypted else "fastdp heartbeats"
            msg = (f"{kind} of IP length {hb_len} (frame {hb_len + ETH_HDR} bytes, overlay MTU {overlay}) "
                   f"exceed the path MTU {path_mtu} reported by {facts['icmp_sender']}; "
                   + ("fastdp never came up" if not delivered else "the large heartbeats are dropped")
                   + (" and the hosts fell back to sleeve." if not sleeve.empty else "."))
            owner = {a: h for h, i in ctx.tl.hosts.items() for a in i.addresses}
            quoted_pairs = [(owner.get(str(a.get("quoted_src")), str(a.get("quoted_src"))),
                             owner.get(str(a.get("quoted_dst")), str(a.get("quoted_dst")))) for a in attrs]
            hosts = [h for pair in quoted_pairs for h in pair] + [p.src for p in paths] + [p.dst for p in paths]
            path_name = path.name if path else f"{quoted_pairs[0][0]} -> {quoted_pairs[0][1]}"
            facts["path"] = path_name
            findings.append(ctx.finding(
                RULE, confidence=0.95 if not delivered else 0.75, message=msg, facts=facts,
                evidence=[icmp.iloc[:1], hb_rows.iloc[:1], lost.iloc[:2], sleeve.iloc[:1], icmp.iloc[1:], hb_rows.iloc[1:]],
                hosts=hosts, path=path_name,
            ))
            return findings
    # 2. No ICMP: heartbeats that never arrived while the path is proven to carry less than their size.
    for p in paths:
        if not p.failed:
            continue
        bounds = mtu_bounds(ctx.tl, p.src_addr, p.dst_addr)
        if bounds.low is None or bounds.low >= p.ip_len:
            continue
        path_mtu = bounds.high if bounds.high is not None else bounds.low
        facts = {
            "path_mtu": path_mtu, "path_mtu_low": bounds.low, "path_mtu_high": bounds.high,
            "heartbeat_ip_len": p.ip_len, "heartbeat_frame_len": p.frame_len, "overlay_mtu": p.overlay_mtu,
            **overlay_limits(bounds.low), "fastdp_established": False,
            "sleeve_fallback": not ctx.of("mode.sleeve_after_fastdp").empty, "path": p.name,
        }
        facts["max_overlay_mtu"] = max_overlay_mtu(bounds.low)
        msg = (f"fastdp heartbeats {p.name} of IP length {p.ip_len} (overlay MTU {p.overlay_mtu}) never arrived, "
               f"while packets up to {bounds.low} bytes did: the path MTU is below the heartbeat size (no ICMP seen).")
        lost = ctx.of("fastdp.heartbeat_lost")
        findings.append(ctx.finding(
            RULE, confidence=0.7 if p.receiver_captured else 0.5, message=msg, facts=facts,
            evidence=[hb_sent[text(hb_sent["src_host"]) == p.src].iloc[:1] if not hb_sent.empty else hb_sent,
                      lost.iloc[:3], ctx.of("sleeve.pmtu_verified").iloc[:1], ctx.of("mode.sleeve_after_fastdp")],
            hosts=[p.src, p.dst], path=p.name,
        ))
    return findings


RULE = Rule(
    id="fastdp-heartbeat-exceeds-path-mtu",
    title="fastdp heartbeats exceed the path MTU",
    kind=FAULT,
    needs=("fastdp.heartbeat_sent", "fastdp.heartbeat_size", "icmp.frag_needed", "fastdp.heartbeat_lost",
           "mode.sleeve_after_fastdp"),
    facts=(
        "path", "icmp_sender", "icmp_count", "path_mtu_low", "path_mtu_high", "max_overlay_mtu",
        "max_overlay_mtu_encrypted", "fastdp_established", "sleeve_fallback", "encrypted", "path_mtu",
        "heartbeat_ip_len", "heartbeat_frame_len", "overlay_mtu",
    ),
    fix=("Set the overlay MTU to at most {max_overlay_mtu} (path MTU {path_mtu} - 50 bytes of VXLAN overhead; at most "
         "{max_overlay_mtu_encrypted} with encryption, 84..87 bytes of overhead), e.g. WEAVE_MTU={max_overlay_mtu} on "
         "every host and `weave reset`/relaunch; or raise the underlay MTU along the path to at least "
         "{heartbeat_ip_len} (1500 is standard)."),
    not_found="no fastdp heartbeat was reported too big by ICMP, and none vanished on a path proven smaller than it",
    check=check,
)
