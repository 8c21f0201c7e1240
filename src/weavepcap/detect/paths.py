"""Per host pair: overlay mode, heartbeats sent/received, and the path-MTU interval the packets prove."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from weavepcap.detect.base import Timeline, text
from weavepcap.detect.heartbeats import FASTDP_HB, SLEEVE_DATA, SLEEVE_HB, overlay_acks
from weavepcap.model import PathInfo

SLEEVE_OVERHEAD = 62  # inner IP → outer IP for sleeve (wire-format §3.4); a verified sleeve MTU + 62 got through
ICMP_CLASSES = ("icmp.frag_needed", "icmpv6.packet_too_big")


@dataclass(frozen=True)
class MtuBounds:
    """What the capture proves about a path's MTU: the largest IP packet that got through, the limit seen."""

    low: int | None  # largest IP length delivered (or confirmed by a sleeve PMTU ack)
    high: int | None  # ICMP next-hop MTU, else the smallest DF IP length that was lost
    icmp_mtu: int | None
    smallest_lost: int | None


def mtu_bounds(tl: Timeline, src_addr: str, dst_addr: str) -> MtuBounds:
    pk = tl.packets
    if pk.empty:
        return MtuBounds(None, None, None, None)
    ip_src = text(pk["ip_src"])
    ip_dst = text(pk["ip_dst"])
    direction = text(pk["dir"])
    on_path = (ip_src == src_addr) & (ip_dst == dst_addr)
    arrived = pk["ip_len"].to_numpy()[on_path & (direction == "rx")]
    low = int(arrived.max()) if arrived.size else None
    acks = overlay_acks(tl)
    if not acks.empty:
        ver = acks[(acks["ack_kind"] == "sleeve.pmtu_verified") & (text(acks["ip_src"]) == dst_addr)
                   & (text(acks["ip_dst"]) == src_addr)]
        if not ver.empty and int(ver["ctl_pmtu"].max()) > 0:
            low = max(low or 0, int(ver["ctl_pmtu"].max()) + SLEEVE_OVERHEAD)
    klass = text(pk["klass"])
    icmp = pk[np.isin(klass, ICMP_CLASSES) & (text(pk["q_ip_src"]) == src_addr) & (text(pk["q_ip_dst"]) == dst_addr)]
    icmp_mtu = int(icmp["icmp_mtu"].min()) if not icmp.empty else None
    smallest_lost = None
    d = tl.delivery
    if not d.empty:
        idx = pk.index[on_path & (direction == "tx") & pk["ip_df"].to_numpy()]
        sub = d.reindex(idx)
        lost = sub[sub["checkable"].fillna(False).astype(bool) & ~sub["delivered"].fillna(False).astype(bool)]
        if not lost.empty:
            sizes = pk.loc[lost.index, "ip_len"].to_numpy()
            # Only losses above what got through say something about size.
            sizes = sizes[sizes > (low or 0)]
            smallest_lost = int(sizes.min()) if sizes.size else None
    high = icmp_mtu if icmp_mtu is not None else (smallest_lost - 1 if smallest_lost is not None else None)
    return MtuBounds(low, high, icmp_mtu, smallest_lost)


def summarize_paths(tl: Timeline) -> list[PathInfo]:
    """One PathInfo per direction between captured-or-addressed Weave hosts that exchanged Weave traffic."""
    pk = tl.packets
    if pk.empty:
        return []
    klass = text(pk["klass"])
    weave = np.char.startswith(klass.astype(str), "weave.")
    udp = weave & (pk["ip_proto"].to_numpy() == 17) | (klass == "weave.fastdp.esp")
    rows = pk[udp]
    if rows.empty:
        return []
    pairs = pd.DataFrame({"s": text(rows["ip_src"]), "d": text(rows["ip_dst"])}).drop_duplicates()
    owner = {a: h for h, i in tl.hosts.items() for a in i.addresses}
    acks = overlay_acks(tl)
    out: list[PathInfo] = []
    direction = text(pk["dir"])
    ip_src, ip_dst = text(pk["ip_src"]), text(pk["ip_dst"])
    for s, d in zip(pairs["s"], pairs["d"], strict=True):
        on = (ip_src == s) & (ip_dst == d)
        hb_fast = on & (klass == FASTDP_HB)
        hb_sleeve = on & (klass == SLEEVE_HB)
        hb = hb_fast if hb_fast.any() else hb_sleeve
        sent = int((hb & (direction == "tx")).sum())
        received = int((hb & (direction == "rx")).sum())
        acked = set()
        if not acks.empty:
            mine = acks[(text(acks["ip_src"]) == d) & (text(acks["ip_dst"]) == s)]
            acked = set(mine["ack_kind"])
        if "fastdp.hb_ack" in acked or (hb_fast & (direction == "rx")).any() and (on & (klass == "weave.fastdp.data")).any():
            mode = "fastdp"
        elif (on & np.isin(klass, SLEEVE_DATA)).any() or "sleeve.hb_ack" in acked:
            mode = "sleeve"
        else:
            mode = "unknown"
        sizes = pk["ip_len"].to_numpy()[hb_fast]
        hb_len = int(pd.Series(sizes).mode().iloc[0]) if sizes.size else None
        mtus = pk["overlay_mtu"].to_numpy()[hb_fast]
        overlay = int(pd.Series(mtus).mode().iloc[0]) if mtus.size else None
        bounds = mtu_bounds(tl, s, d)
        out.append(PathInfo(
            src_host=owner.get(s, s), dst_host=owner.get(d, d), src_addr=s, dst_addr=d, mode=mode,
            heartbeats_sent=sent, heartbeats_received=received, heartbeat_ip_len=hb_len,
            overlay_mtu=overlay, path_mtu_low=bounds.low, path_mtu_high=bounds.high,
        ))
    return out
