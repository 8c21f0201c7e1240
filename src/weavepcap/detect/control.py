"""TCP 6783 control-connection events: connect attempts, connects, refusals, resets and retransmissions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.detect.base import Timeline, empty_events, join_text, label, make_events, text
from weavepcap.wire import TCP_ACK as ACK
from weavepcap.wire import TCP_RST as RST
from weavepcap.wire import TCP_SYN as SYN


def control_segments(tl: Timeline) -> pd.DataFrame:
    """TCP segments to or from the weave port, with a direction-free connection id per capture."""
    pk = tl.packets
    if pk.empty:
        return pk
    port = tl.settings.weave_port
    sel = (pk["ip_proto"].to_numpy() == 6) & ((pk["sport"].to_numpy() == port) | (pk["dport"].to_numpy() == port))
    rows = pk[sel]
    if rows.empty:
        return rows
    a = join_text(text(rows["ip_src"]), ":", rows["sport"].to_numpy())
    b = join_text(text(rows["ip_dst"]), ":", rows["dport"].to_numpy())
    conn = np.where(a < b, join_text(a, "|", b), join_text(b, "|", a))
    return rows.assign(conn=join_text(text(rows["capture"]), "#", conn))


def detect_control(tl: Timeline) -> list[pd.DataFrame]:
    """tcp.connect_attempt, tcp.connected, tcp.refused, tcp.reset_early, tcp.reset, tcp.retransmission."""
    seg = control_segments(tl)
    if seg.empty:
        return [empty_events()]
    flt = f"tcp.port == {tl.settings.weave_port}"
    flags = seg["tcp_flags"].to_numpy()
    src = label(text(seg["src_host"]), text(seg["ip_src"]))
    dst = label(text(seg["dst_host"]), text(seg["ip_dst"]))
    out: list[pd.DataFrame] = []
    syn = (flags & (SYN | ACK)) == SYN
    synack = (flags & (SYN | ACK)) == (SYN | ACK)
    rst = (flags & RST) != 0
    conn = seg["conn"].to_numpy()
    # First SYN of each connection is the attempt; repeated SYNs are retransmissions (below).
    first_syn = syn & ~pd.Series(conn).where(syn).duplicated().to_numpy()
    rows = seg[first_syn]
    out.append(make_events(rows, "tcp.connect_attempt",
                           join_text(src[first_syn], " connects to ", dst[first_syn], " port ", rows["dport"].to_numpy()),
                           flt))
    first_synack = synack & ~pd.Series(conn).where(synack).duplicated().to_numpy()
    rows = seg[first_synack]
    out.append(make_events(rows, "tcp.connected",
                           join_text(src[first_synack], " accepts the connection from ", dst[first_synack]), flt))
    # What had happened on the connection before each RST decides what the RST means.
    t = seg["t_ns"].to_numpy()
    big = np.iinfo(np.int64).max
    first_t = (pd.Series(np.where(synack, t, big)).groupby(conn).transform("min")).to_numpy()
    # The Weave handshake is complete once both sides sent their 7-byte `weave` header and flag byte;
    # counted by payload so it holds even where the stream decoder missed the message kinds.
    hs_src = text(seg["ip_src"])
    spoke = seg["l4_payload_len"].to_numpy() >= 8
    sides = pd.DataFrame({"conn": conn[spoke], "src": hs_src[spoke], "t": t[spoke]})
    per_side = sides.groupby(["conn", "src"])["t"].min().reset_index()
    agg = per_side.groupby("conn")["t"].agg(["count", "max"])
    done_t = agg["max"].where(agg["count"] >= 2, big)
    hs_done = pd.Series(conn).map(done_t).fillna(big).astype("int64")
    any_syn = pd.Series(syn).groupby(conn).transform("any").to_numpy()
    established = first_t <= t
    completed = hs_done.to_numpy() <= t
    refused = rst & any_syn & ~established
    early = rst & established & ~completed
    normal = rst & ~refused & ~early
    for mask, event, text_mid in ((refused, "tcp.refused", " refused the connection from "),
                                  (early, "tcp.reset_early", " reset the connection before the Weave handshake completed with "),
                                  (normal, "tcp.reset", " closed the connection (RST, Weave's normal close) with ")):
        rows = seg[mask]
        out.append(make_events(rows, event, join_text(src[mask], text_mid, dst[mask]), flt))
    # The features map names each peer (Name, NickName, ShortID): first one per side and capture.
    feat = (text(seg["ctl_msg"]) == "features") & ((text(seg["ctl_nickname"]) != "") | (text(seg["ctl_peer_name"]) != ""))
    rows = seg[feat]
    first = ~rows.duplicated(["capture", "ip_src"]).to_numpy()
    rows = rows[first]
    msg = join_text(src[feat][first], " introduces itself: Name ", text(rows["ctl_peer_name"]), ", NickName ",
                    text(rows["ctl_nickname"]), ", ShortID ", rows["ctl_short_id"].to_numpy())
    out.append(make_events(rows, "tcp.features", msg, flt,
                           [{"peer_name": n, "nickname": k, "short_id": int(i)} for n, k, i in
                            zip(text(rows["ctl_peer_name"]), text(rows["ctl_nickname"]), rows["ctl_short_id"], strict=True)]))
    # Retransmission: the same sequence number with data (or the same SYN) again from the same side.
    payload = seg["l4_payload_len"].to_numpy()
    cand = (payload > 0) | syn
    key = pd.DataFrame({"conn": conn, "src": hs_src, "seq": seg["tcp_seq"].to_numpy(), "syn": syn})
    dup = np.zeros(len(seg), dtype=bool)
    dup[np.flatnonzero(cand)] = key[cand].duplicated().to_numpy()
    rows = seg[dup]
    out.append(make_events(rows, "tcp.retransmission",
                           join_text(src[dup], " retransmits to ", dst[dup], " (seq ", rows["tcp_seq"].to_numpy(), ")"),
                           flt))
    return out
