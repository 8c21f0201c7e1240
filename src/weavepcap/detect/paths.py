"""Per host pair: overlay mode, heartbeats sent/received, and the path-MTU interval the packets prove."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from weavepcap.classes import ICMP_CLASSES
from weavepcap.detect.base import Timeline, text
from weavepcap.detect.heartbeats import FASTDP_HB, SLEEVE_DATA, SLEEVE_HB, overlay_acks
from weavepcap.model import PathInfo
from weavepcap.wire import SLEEVE_OVERHEAD  # a verified sleeve MTU + 62 got through


@dataclass(frozen=True)
class MtuBounds:
    """What the capture proves about a path's MTU: the largest IP packet that got through, the limit seen."""

    low: int | None  # largest IP length delivered (or confirmed by a sleeve PMTU ack)
    high: int | None  # ICMP next-hop MTU, else the smallest DF IP length that was lost
    icmp_mtu: int | None
    smallest_lost: int | None


def mtu_bounds(tl: Timeline, src_addr: str, dst_addr: str) -> MtuBounds:
    key = f"mtu:{src_addr}>{dst_addr}"
    if key not in tl.cache:
        tl.cache[key] = _mtu_bounds(tl, src_addr, dst_addr)
    return tl.cache[key]  # type: ignore[return-value]


def _mtu_bounds(tl: Timeline, src_addr: str, dst_addr: str) -> MtuBounds:
    pk = tl.packets
    if pk.empty:
        return MtuBounds(None, None, None, None)
    pos = tl.pair_rows(src_addr, dst_addr)
    direction = text(pk["dir"])[pos]
    ip_len = pk["ip_len"].to_numpy()[pos]
    arrived = ip_len[direction == "rx"]
    low = int(arrived.max()) if arrived.size else None
    acks = overlay_acks(tl)
    if not acks.empty:
        ver = acks[(acks["ack_kind"] == "sleeve.pmtu_verified") & (text(acks["ip_src"]) == dst_addr)
                   & (text(acks["ip_dst"]) == src_addr)]
        if not ver.empty and int(ver["ctl_pmtu"].max()) > 0:
            low = max(low or 0, int(ver["ctl_pmtu"].max()) + SLEEVE_OVERHEAD)
    icmp = _icmp_rows(tl)
    icmp = icmp[(text(icmp["q_ip_src"]) == src_addr) & (text(icmp["q_ip_dst"]) == dst_addr)]
    icmp_mtu = int(icmp["icmp_mtu"].min()) if not icmp.empty else None
    smallest_lost = None
    d = tl.delivery
    if not d.empty:
        idx = pk.index[pos[(direction == "tx") & pk["ip_df"].to_numpy().astype(bool)[pos]]]
        sub = d.reindex(idx)
        lost = sub[sub["checkable"].fillna(False).astype(bool) & ~sub["delivered"].fillna(False).astype(bool)]
        if not lost.empty:
            sizes = pk.loc[lost.index, "ip_len"].to_numpy()
            # Only losses above what got through say something about size.
            sizes = sizes[sizes > (low or 0)]
            smallest_lost = int(sizes.min()) if sizes.size else None
    high = icmp_mtu if icmp_mtu is not None else (smallest_lost - 1 if smallest_lost is not None else None)
    return MtuBounds(low, high, icmp_mtu, smallest_lost)


def _icmp_rows(tl: Timeline) -> pd.DataFrame:
    cached = tl.cache.get("icmp")
    if cached is None:
        pk = tl.packets
        cached = tl.cache["icmp"] = pk[np.isin(text(pk["klass"]), ICMP_CLASSES)]
    return cached  # type: ignore[return-value]


def summarize_paths(tl: Timeline) -> list[PathInfo]:
    """One PathInfo per direction between captured-or-addressed Weave hosts that exchanged Weave traffic."""
    cached = tl.cache.get("paths")
    if cached is None:
        cached = tl.cache["paths"] = _summarize_paths(tl)
    return cached  # type: ignore[return-value]


def _summarize_paths(tl: Timeline) -> list[PathInfo]:
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
    all_dir = text(pk["dir"])
    all_len = pk["ip_len"].to_numpy()
    all_mtu = pk["overlay_mtu"].to_numpy()
    for s, d in zip(pairs["s"], pairs["d"], strict=True):
        pos = tl.pair_rows(s, d)
        k = klass[pos]
        direction = all_dir[pos]
        hb_fast = k == FASTDP_HB
        hb_sleeve = k == SLEEVE_HB
        hb = hb_fast if hb_fast.any() else hb_sleeve
        sent = int((hb & (direction == "tx")).sum())
        received = int((hb & (direction == "rx")).sum())
        acked = set()
        if not acks.empty:
            mine = acks[(text(acks["ip_src"]) == d) & (text(acks["ip_dst"]) == s)]
            acked = set(mine["ack_kind"])
        if "fastdp.hb_ack" in acked or (hb_fast & (direction == "rx")).any() and (k == "weave.fastdp.data").any():
            mode = "fastdp"
        elif np.isin(k, SLEEVE_DATA).any() or "sleeve.hb_ack" in acked:
            mode = "sleeve"
        else:
            mode = "unknown"
        sizes = all_len[pos][hb_fast]
        hb_len = int(pd.Series(sizes).mode().iloc[0]) if sizes.size else None
        mtus = all_mtu[pos][hb_fast]
        overlay = int(pd.Series(mtus).mode().iloc[0]) if mtus.size else None
        bounds = mtu_bounds(tl, s, d)
        out.append(PathInfo(
            src_host=owner.get(s, s), dst_host=owner.get(d, d), src_addr=s, dst_addr=d, mode=mode,
            heartbeats_sent=sent, heartbeats_received=received, heartbeat_ip_len=hb_len,
            overlay_mtu=overlay, path_mtu_low=bounds.low, path_mtu_high=bounds.high,
        ))
    return out
