"""Rule: large DF packets vanish on a path without any ICMP while small ones pass (a PMTU black hole)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.detect.base import make_events, row_filters, text
from weavepcap.detect.paths import mtu_bounds
from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import overlay_facts, overlay_limits
from weavepcap.wire import (
    SLEEVE_OVERHEAD,  # a verified sleeve MTU + 62 = the outer IP length that got through
)

SMALL = 576  # an IP length every IPv4 path carries


def check(ctx: Context) -> list[Finding]:
    if not ctx.of("icmp.frag_needed").empty:
        return []  # an ICMP too-big was sent: the path is not black-holed (another rule reads it)
    pk = ctx.packets
    d = ctx.tl.delivery
    if pk.empty or d.empty:
        return _one_sided(ctx)
    lost_idx = d.index[d["checkable"].astype(bool) & ~d["delivered"].astype(bool)]
    lost = pk.loc[lost_idx]
    lost = lost[lost["ip_df"].to_numpy().astype(bool)]
    if lost.empty:
        return _one_sided(ctx)
    big_parts: list[pd.DataFrame] = []
    lows: list[int] = []
    smallest: list[int] = []
    for (s, dd), g in lost.groupby([text(lost["ip_src"]), text(lost["ip_dst"])], sort=False):
        b = mtu_bounds(ctx.tl, str(s), str(dd))
        if b.low is None or b.smallest_lost is None or b.smallest_lost <= b.low:
            continue
        big_parts.append(g[g["ip_len"].to_numpy() > b.low])
        lows.append(b.low)
        smallest.append(b.smallest_lost)
    if not big_parts:
        return _one_sided(ctx)
    big = pd.concat(big_parts).sort_values("t_ns", kind="stable")
    first = big.iloc[0]
    src = str(first["src_host"] or first["ip_src"])
    dst = str(first["dst_host"] or first["ip_dst"])
    classes = sorted(set(text(big["klass"])))
    low, high = max(lows), min(smallest)
    facts: dict[str, object] = {
        **overlay_facts(ctx),
        "path": f"{src} -> {dst}", "path_mtu": low, "path_mtu_low": low, "path_mtu_high": high - 1,
        "smallest_lost_ip_len": high, "largest_delivered_ip_len": low, "lost_frames": int(len(big)),
        "lost_classes": classes, "icmp_frag_needed_anywhere": 0, **overlay_limits(low),
    }
    msg = (f"{len(big)} DF packets of IP length {high} and more vanished between {src} and {dst} with no ICMP "
           f"too-big anywhere, while packets up to {low} bytes arrived ({', '.join(classes)}).")
    # Cite the first lost packet of each class, then what still passed (small packets at the receiver).
    firsts = big.drop_duplicates("klass")
    lost_ev = make_events(firsts, "packet.lost", [f"{k} of IP length {n} sent, never arrived, no ICMP"
                                                 for k, n in zip(text(firsts["klass"]), firsts["ip_len"], strict=True)],
                          row_filters(firsts, ctx.settings))
    direction = text(pk["dir"])
    small = pk[(direction == "rx") & (pk["ip_len"].to_numpy() <= SMALL) & np.isin(text(pk["dst_host"]), [src, dst])
               & np.isin(text(pk["src_host"]), [src, dst])]
    kinds = np.where(small["icmp_type"].to_numpy() >= 0, "icmp", text(small["klass"]))
    small_first = small[~pd.Series(kinds).duplicated().to_numpy()]
    small_ev = make_events(small_first, "packet.delivered",
                           [f"small packet ({k}, IP length {n}) arrived" for k, n in
                            zip(text(small_first["klass"]), small_first["ip_len"], strict=True)],
                           row_filters(small_first, ctx.settings))
    only_heartbeats = classes == ["weave.fastdp.heartbeat"]
    return [ctx.finding(RULE, confidence=0.55 if only_heartbeats else 0.85, message=msg, facts=facts,
                        evidence=[lost_ev, small_ev.iloc[:3], ctx.of("sleeve.pmtu_verified").iloc[:1]],
                        hosts=[src, dst], path=f"{src} -> {dst}")]


def _one_sided(ctx: Context) -> list[Finding]:
    """Without the receiver's capture: sleeve PMTU probes larger than what the peer then verified went
    unanswered (the search had to find the limit itself) and no ICMP too-big came back."""
    verified = ctx.of("sleeve.pmtu_verified")
    probes = ctx.of("sleeve.pmtu_probe")
    if verified.empty or probes.empty:
        return []
    findings: list[Finding] = []
    # The binary search acks each size that got through: the largest one per direction is the limit.
    verified = verified.assign(_mtu=[int(a.get("pmtu", 0)) for a in verified["attrs"]])
    verified = verified.sort_values("_mtu", ascending=False, kind="stable").drop_duplicates(["src_host", "dst_host"])
    for _, v in verified.iterrows():
        # The ack travels back from the receiver: it verifies the path from its destination to its source.
        sender, receiver = v["dst_host"], v["src_host"]
        limit = int(v["_mtu"]) + SLEEVE_OVERHEAD
        mine = probes[(probes["src_host"] == sender)]
        sizes = [int(a.get("ip_len", 0)) for a in mine["attrs"]]
        over = mine[[n > limit for n in sizes]]
        if over.empty or ctx.has_capture(str(receiver)):
            continue
        high = min(int(a.get("ip_len", 0)) for a in over["attrs"])
        facts: dict[str, object] = {**overlay_facts(ctx), "path": f"{sender} -> {receiver}", "path_mtu": limit,
                                    "path_mtu_low": limit, "path_mtu_high": high - 1, "smallest_lost_ip_len": high,
                                    "icmp_frag_needed_anywhere": 0, **overlay_limits(limit)}
        msg = (f"sleeve PMTU probes {sender} -> {receiver} of IP length {high} went unanswered with no ICMP "
               f"too-big, and {receiver} verified only {limit - SLEEVE_OVERHEAD} (a {limit}-byte path): a black hole "
               f"below {high} bytes (without {receiver}'s capture).")
        findings.append(ctx.finding(RULE, confidence=0.6, message=msg, facts=facts,
                                    evidence=[over.iloc[:2], verified[verified.index == v.name].drop(columns="_mtu")],
                                    hosts=[str(sender), str(receiver)], path=f"{sender} -> {receiver}"))
        break
    return findings


RULE = Rule(
    id="pmtu-blackhole",
    title="PMTU black hole: large DF packets vanish without ICMP",
    kind=FAULT,
    needs=("sleeve.pmtu_probe", "sleeve.pmtu_verified", "fastdp.heartbeat_lost", "icmp.frag_needed"),
    facts=(
        "path", "path_mtu_low", "path_mtu_high", "largest_delivered_ip_len", "smallest_lost_ip_len",
        "lost_frames", "lost_classes", "icmp_frag_needed_anywhere", "max_overlay_mtu",
        "max_overlay_mtu_encrypted", "path_mtu", "heartbeat_ip_len", "heartbeat_frame_len", "overlay_mtu",
    ),
    fix=("Find the hop with the smaller MTU (path MTU about {path_mtu}) and either raise its MTU or make it send ICMP "
         "fragmentation-needed (do not filter ICMP type 3 code 4 / ICMPv6 type 2); meanwhile set the overlay MTU to "
         "at most {max_overlay_mtu} (WEAVE_MTU; {max_overlay_mtu_encrypted} with encryption)."),
    not_found="no DF packet larger than what got through was lost without an ICMP too-big (or no receiver capture)",
    check=check,
)
