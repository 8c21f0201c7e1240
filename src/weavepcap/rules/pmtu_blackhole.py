"""Rule: large DF packets vanish on a path without any ICMP while small ones pass (a PMTU black hole)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.detect.base import make_events, row_filters, text
from weavepcap.detect.paths import mtu_bounds
from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import overlay_facts, overlay_limits

SMALL = 576  # an IP length every IPv4 path carries


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
    if lost.empty:
        return []
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
        return []
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
