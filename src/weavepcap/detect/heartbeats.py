"""Heartbeat events: fastdp and sleeve heartbeats sent, received, lost and acked; ESP; the switch to sleeve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.classes import SLEEVE_DATA_CLASSES, class_filter
from weavepcap.detect.base import Timeline, empty_events, join_text, label, make_events, text
from weavepcap.wire import (
    FASTDP_SUBTAG_HB_ACK,
    SLEEVE_SUBTAG_FRAG_ACK,
    SLEEVE_SUBTAG_HB_ACK,
    SUBTAG_PMTU_VERIFIED,
)

FASTDP_HB = "weave.fastdp.heartbeat"
SLEEVE_HB = "weave.sleeve.heartbeat"
ESP = "weave.fastdp.esp"
SLEEVE_DATA = SLEEVE_DATA_CLASSES


def overlay_acks(tl: Timeline) -> pd.DataFrame:
    """TCP 6783 overlay-control acks, with which overlay they ack (fastdp or sleeve) and what."""
    cached = tl.cache.get("acks")
    if cached is None:
        cached = tl.cache["acks"] = _overlay_acks(tl)
    return cached  # type: ignore[return-value]


def _overlay_acks(tl: Timeline) -> pd.DataFrame:
    pk = tl.packets
    if pk.empty:
        return pk.assign(ack_kind=pd.Series(dtype=object))
    rows = pk[(text(pk["ctl_msg"]) == "overlay_ctl") & (pk["ctl_overlay_subtag"] >= 0).to_numpy()]
    if rows.empty:
        return rows.assign(ack_kind=pd.Series(dtype=object))
    index = rows["ctl_overlay_index"].to_numpy()
    sub = rows["ctl_overlay_subtag"].to_numpy()
    # Forwarder index: fastdp 0 and sleeve 1 when both peers run fastdp, sleeve 0 otherwise (wire-format §2.3).
    # Any message on index 1 means two forwarders, even where this capture shows no fastdp packet.
    fastdp_present = bool((index == 1).any() or (text(pk["klass"]) == FASTDP_HB).any() or (sub[index == 0] == 0).any())
    sleeve_index = 1 if fastdp_present else 0
    kind = np.full(len(rows), "", dtype=object)
    kind[(index == 0) & (sub == FASTDP_SUBTAG_HB_ACK) & fastdp_present] = "fastdp.hb_ack"
    is_sleeve = (index == sleeve_index) | ((index == 0) & np.isin(sub, (SLEEVE_SUBTAG_FRAG_ACK, SUBTAG_PMTU_VERIFIED)))
    kind[is_sleeve & (sub == SLEEVE_SUBTAG_HB_ACK)] = "sleeve.hb_ack"
    kind[is_sleeve & (sub == SLEEVE_SUBTAG_FRAG_ACK)] = "sleeve.frag_ack"
    kind[is_sleeve & (sub == SUBTAG_PMTU_VERIFIED)] = "sleeve.pmtu_verified"
    out = rows.assign(ack_kind=kind)
    return out[out["ack_kind"] != ""]


def detect_heartbeats(tl: Timeline) -> list[pd.DataFrame]:
    """fastdp/sleeve heartbeat sent/received/lost/acked, heartbeat size, ESP sent/received, mode switch."""
    pk = tl.packets
    if pk.empty:
        return [empty_events()]
    s = tl.settings
    out: list[pd.DataFrame] = []
    klass = text(pk["klass"])
    direction = text(pk["dir"])
    src = label(text(pk["src_host"]), text(pk["ip_src"]))
    dst = label(text(pk["dst_host"]), text(pk["ip_dst"]))
    delivery = tl.delivery

    for cls, name in ((FASTDP_HB, "fastdp"), (SLEEVE_HB, "sleeve")):
        flt = class_filter(cls, s)
        sent = (klass == cls) & (direction == "tx")
        rows = pk[sent]
        size = rows["ip_len"].to_numpy()
        msg = join_text(f"{name} heartbeat ", src[sent], " -> ", dst[sent], ", IP length ", size)
        attrs = [{"ip_len": int(a), "frame_len": int(b), "overlay_mtu": int(c)}
                 for a, b, c in zip(size, rows["wirelen"].to_numpy(), rows["overlay_mtu"].to_numpy(), strict=True)]
        out.append(make_events(rows, f"{name}.heartbeat_sent", msg, flt, attrs))
        recv = (klass == cls) & (direction == "rx")
        msg = join_text(f"{name} heartbeat from ", src[recv], " received, IP length ", pk["ip_len"].to_numpy()[recv])
        out.append(make_events(pk[recv], f"{name}.heartbeat_received", msg, flt))
        if not delivery.empty:
            d = delivery.reindex(rows.index)
            lost_mask = (d["checkable"].fillna(False).astype(bool) & ~d["delivered"].fillna(False).astype(bool)).to_numpy()
            lost = rows[lost_mask]
            msg = join_text(f"{name} heartbeat ", src[sent][lost_mask], " -> ", dst[sent][lost_mask],
                            " (IP length ", lost["ip_len"].to_numpy(), ") never reached ", dst[sent][lost_mask])
            out.append(make_events(lost, f"{name}.heartbeat_lost", msg, flt))
        if cls == FASTDP_HB:
            # One size event per path and size: the size fixes the overlay MTU (IP = MTU + 50).
            seen = pk[(klass == cls)].drop_duplicates(["ip_src", "ip_dst", "ip_len"])
            sz = seen["ip_len"].to_numpy()
            mtu = seen["overlay_mtu"].to_numpy()
            sel = klass == cls
            first_src = src[sel][~pk[sel].duplicated(["ip_src", "ip_dst", "ip_len"]).to_numpy()]
            first_dst = dst[sel][~pk[sel].duplicated(["ip_src", "ip_dst", "ip_len"]).to_numpy()]
            msg = join_text("fastdp heartbeats ", first_src, " -> ", first_dst, ": IP length ", sz, ", frame ",
                            seen["wirelen"].to_numpy(), " bytes, overlay MTU ", mtu)
            attrs = [{"ip_len": int(a), "frame_len": int(b), "overlay_mtu": int(c)}
                     for a, b, c in zip(sz, seen["wirelen"].to_numpy(), mtu, strict=True)]
            out.append(make_events(seen, "fastdp.heartbeat_size", msg, flt, attrs))

    acks = overlay_acks(tl)
    if not acks.empty:
        port_filter = f"tcp.port == {s.weave_port}"
        a_src = label(text(acks["src_host"]), text(acks["ip_src"]))
        a_dst = label(text(acks["dst_host"]), text(acks["ip_dst"]))
        kinds = acks["ack_kind"].to_numpy()
        # The same ack may be in both hosts' captures: cite the first sighting of each.
        for kind, event, what in (("fastdp.hb_ack", "fastdp.heartbeat_acked", "fastdp heartbeats"),
                                  ("sleeve.hb_ack", "sleeve.heartbeat_acked", "sleeve heartbeats"),
                                  ("sleeve.frag_ack", "sleeve.fragtest_acked", "the fragmentation test")):
            sel = kinds == kind
            rows = acks[sel]
            msg = join_text(a_src[sel], " acked ", what, " from ", a_dst[sel], " over TCP")
            out.append(make_events(rows, event, msg, port_filter))
        sel = kinds == "sleeve.pmtu_verified"
        rows = acks[sel]
        mtus = rows["ctl_pmtu"].to_numpy()
        msg = join_text(a_src[sel], " confirmed sleeve PMTU ", mtus, " for packets from ", a_dst[sel])
        out.append(make_events(rows, "sleeve.pmtu_verified", msg, port_filter,
                               [{"pmtu": int(m)} for m in mtus]))

    # ESP: one event per path for the first packet each way (encrypted data can be millions of frames).
    for dirname, event in (("tx", "fastdp.esp_sent"), ("rx", "fastdp.esp_received")):
        sel = (klass == ESP) & (direction == dirname)
        rows = pk[sel]
        first = ~rows.duplicated(["host", "ip_src", "ip_dst"]).to_numpy()
        msg = join_text("ESP (encrypted fastdp) ", src[sel][first], " -> ", dst[sel][first])
        out.append(make_events(rows[first], event, msg, "esp"))

    # First container frame over fastdp per path, in each capture (fastdp carries data).
    sel = klass == "weave.fastdp.data"
    rows = pk[sel]
    first = ~rows.duplicated(["capture", "ip_src", "ip_dst"]).to_numpy()
    msg = join_text("container traffic over fastdp ", src[sel][first], " -> ", dst[sel][first], " (VNI ",
                    rows["vxlan_vni"].to_numpy()[first], ")")
    out.append(make_events(rows[first], "fastdp.data", msg, class_filter("weave.fastdp.data", s)))
    out.append(_mode_switch(tl, klass, src, dst))
    return out


def _mode_switch(tl: Timeline, klass: np.ndarray, src: np.ndarray, dst: np.ndarray) -> pd.DataFrame:
    """First sleeve data on a path after its fastdp heartbeats went unacked (fastdp not established)."""
    pk = tl.packets
    hb = klass == FASTDP_HB
    data = np.isin(klass, SLEEVE_DATA)
    if not hb.any() or not data.any():
        return empty_events()
    first_hb = pk[hb].groupby(["ip_src", "ip_dst"], observed=True)["t_ns"].min()
    acked_paths: set[tuple[str, str]] = set()
    acks = overlay_acks(tl)
    fast_acks = acks[acks["ack_kind"] == "fastdp.hb_ack"] if not acks.empty else acks
    # An ack from B to A means A's heartbeats reached B: path A -> B is fastdp.
    for a, b in zip(text(fast_acks["ip_dst"]), text(fast_acks["ip_src"]), strict=True):
        acked_paths.add((a, b))
    rows = pk[data]
    pair = pd.MultiIndex.from_arrays([text(rows["ip_src"]), text(rows["ip_dst"])])
    start = first_hb.astype("int64").reindex(pair, fill_value=np.iinfo(np.int64).max).to_numpy()
    acked = pair.isin(list(acked_paths)) if acked_paths else np.zeros(len(rows), dtype=bool)
    after = (rows["t_ns"].to_numpy() > start) & ~np.asarray(acked, dtype=bool)
    cand = rows[after]
    first = ~cand.duplicated(["ip_src", "ip_dst"]).to_numpy()
    chosen = cand[first]
    if chosen.empty:
        return empty_events()
    sel_src = src[data][after][first]
    sel_dst = dst[data][after][first]
    msg = join_text("first sleeve data ", sel_src, " -> ", sel_dst, " after unacked fastdp heartbeats: using sleeve")
    return make_events(chosen, "mode.sleeve_after_fastdp", msg, class_filter("weave.sleeve.data", tl.settings))
