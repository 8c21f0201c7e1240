"""Path-MTU events: ICMP frag-needed / too-big with what they quote, sleeve PMTU probes, fragmentation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.classes import FRAGMENT_CLASSES, ICMP_CLASSES, QUOTE_KIND, class_filter
from weavepcap.classify import quoted_class
from weavepcap.detect.base import Timeline, empty_events, join_text, label, make_events, text

FRAGTEST = "weave.sleeve.fragtest"
_QUOTE_COLUMNS = ("frame", "q_ip_version", "q_ip_proto", "q_sport", "q_dport", "q_inner_zero_eth")


def icmp_rows(tl: Timeline) -> pd.DataFrame:
    """ICMP 3/4 and ICMPv6 too-big rows with `sender_kind` (self/router), `quoted` and the quoted frame."""
    pk = tl.packets
    if pk.empty:
        return pk
    rows = pk[np.isin(text(pk["klass"]), ICMP_CLASSES)].copy()
    if rows.empty:
        return rows
    s = tl.settings
    # The host's own kernel answers an oversized send it could not put on its own link (seen on `lo`).
    own = (text(rows["src_host"]) == text(rows["host"])) | (text(rows["ip_src"]) == text(rows["q_ip_src"]))
    rows["sender_kind"] = np.where(own, "self", "router")
    rows["quoted"] = quoted_class({c: rows[c].to_numpy() for c in _QUOTE_COLUMNS}, s)
    # Tie the quote to the transmitted frame it refers to, where the sender's capture has it.
    sent = pk[(text(pk["dir"]) == "tx") & (pk["ip_id"] >= 0).to_numpy()]
    sent = sent[["ip_src", "ip_dst", "ip_id", "ip_len", "capture", "frame"]].copy()
    for c in ("ip_src", "ip_dst", "capture"):
        sent[c] = text(sent[c])
    sent = sent.drop_duplicates(["ip_src", "ip_dst", "ip_id", "ip_len"])
    keys = pd.DataFrame({"ip_src": text(rows["q_ip_src"]), "ip_dst": text(rows["q_ip_dst"]),
                         "ip_id": rows["q_ip_id"].to_numpy(), "ip_len": rows["q_ip_len"].to_numpy()})
    found = keys.merge(sent, on=["ip_src", "ip_dst", "ip_id", "ip_len"], how="left")
    rows["quoted_capture"] = found["capture"].fillna("").to_numpy()
    rows["quoted_frame"] = found["frame"].fillna(-1).astype("int64").to_numpy()
    return rows


def detect_pmtu(tl: Timeline) -> list[pd.DataFrame]:
    """icmp.frag_needed, sleeve.pmtu_probe, sleeve.fragtest_sent/reassembled/incomplete/lost."""
    pk = tl.packets
    if pk.empty:
        return [empty_events()]
    s = tl.settings
    out: list[pd.DataFrame] = []
    icmp = icmp_rows(tl)
    if not icmp.empty:
        mtu = icmp["icmp_mtu"].to_numpy()
        sender = np.where(icmp["sender_kind"].to_numpy() == "self",
                          join_text("the host itself (", text(icmp["ip_src"]), ")"),
                          join_text("router ", text(icmp["ip_src"])))
        quoted_frame = icmp["quoted_frame"].to_numpy()
        where = np.where(quoted_frame > 0, join_text(" (", icmp["quoted_capture"].to_numpy(), " frame ",
                                                     quoted_frame, ")"), "")
        msg = join_text("ICMP too big from ", sender, " to ", label(text(icmp["dst_host"]), text(icmp["ip_dst"])),
                        ": next-hop MTU ", mtu, ", quoting a ", [QUOTE_KIND[q].label if q in QUOTE_KIND else "packet" for q in icmp["quoted"]], " of IP length ",
                        icmp["q_ip_len"].to_numpy(), where)
        klass = text(icmp["klass"])
        attrs = [
            {"mtu": int(m), "sender": str(sk), "sender_addr": str(sa), "quoted": str(q), "quoted_ip_len": int(ql),
             "quoted_capture": str(qc), "quoted_frame": int(qf), "quoted_src": str(qs), "quoted_dst": str(qd)}
            for m, sk, sa, q, ql, qc, qf, qs, qd in zip(
                mtu, icmp["sender_kind"], text(icmp["ip_src"]), icmp["quoted"], icmp["q_ip_len"].to_numpy(),
                icmp["quoted_capture"], quoted_frame, text(icmp["q_ip_src"]), text(icmp["q_ip_dst"]), strict=True)
        ]
        flt = np.where(klass == "icmp.frag_needed", class_filter("icmp.frag_needed", s),
                       class_filter("icmpv6.packet_too_big", s))
        ev = make_events(icmp, "icmp.frag_needed", msg, "", attrs)
        ev["filter"] = join_text(ev["filter"].to_numpy(), " && ", flt)
        out.append(ev)

    klass = text(pk["klass"])
    direction = text(pk["dir"])
    src = label(text(pk["src_host"]), text(pk["ip_src"]))
    dst = label(text(pk["dst_host"]), text(pk["ip_dst"]))
    probe = np.isin(klass, ("weave.sleeve.pmtu_verify", "weave.sleeve.pmtu_discovery")) & (direction == "tx")
    rows = pk[probe]
    msg = join_text("sleeve PMTU probe ", src[probe], " -> ", dst[probe], ", IP length ", rows["ip_len"].to_numpy(),
                    np.where(rows["ip_df"].to_numpy(), " (DF)", ""))
    out.append(make_events(rows, "sleeve.pmtu_probe", msg, class_filter("weave.sleeve.pmtu_verify", s),
                           [{"ip_len": int(v)} for v in rows["ip_len"].to_numpy()]))
    got = (klass == "weave.sleeve.pmtu_verify") & (direction == "rx")
    rows = pk[got]
    msg = join_text("sleeve PMTU probe from ", src[got], " arrived, IP length ", rows["ip_len"].to_numpy())
    out.append(make_events(rows, "sleeve.pmtu_probe_received", msg, class_filter("weave.sleeve.pmtu_verify", s),
                           [{"ip_len": int(v)} for v in rows["ip_len"].to_numpy()]))
    out.extend(_fragment_trains(tl, klass, direction, src, dst))
    out.append(_other_losses(tl, klass, src, dst))
    return out


# Losses with their own events elsewhere (heartbeats, fragment trains); the rest are `packet.lost`.
LOSS_REPORTED_ELSEWHERE = ("weave.fastdp.heartbeat", "weave.sleeve.heartbeat", FRAGTEST, "ip.fragment")


def _other_losses(tl: Timeline, klass: np.ndarray, src: np.ndarray, dst: np.ndarray) -> pd.DataFrame:
    """Special packets (PMTU probes, TCP 6783 segments, ESP) that left one host and never reached the other."""
    d = tl.delivery
    if d.empty:
        return empty_events()
    pk = tl.packets
    lost_index = d.index[d["checkable"].astype(bool) & ~d["delivered"].astype(bool)]
    pos = pk.index.get_indexer(lost_index)
    pos = np.sort(pos[pos >= 0])
    pos = pos[~np.isin(klass[pos], LOSS_REPORTED_ELSEWHERE)]
    if not pos.size:
        return empty_events()
    rows = pk.iloc[pos]
    msg = join_text(klass[pos], " ", src[pos], " -> ", dst[pos], " (IP length ", rows["ip_len"].to_numpy(),
                    np.where(rows["ip_df"].to_numpy().astype(bool), ", DF", ""), ") never reached ", dst[pos])
    return make_events(rows, "packet.lost", msg, [class_filter(k, tl.settings) for k in klass[pos]],
                       [{"ip_len": int(n), "class": str(k)} for n, k in zip(rows["ip_len"].to_numpy(), klass[pos], strict=True)])


def _fragment_trains(tl: Timeline, klass: np.ndarray, direction: np.ndarray, src: np.ndarray, dst: np.ndarray
                     ) -> list[pd.DataFrame]:
    pk = tl.packets
    out: list[pd.DataFrame] = []
    s = tl.settings
    frag = np.isin(klass, FRAGMENT_CLASSES)
    if not frag.any():
        return out
    # Sent trains: cite the first fragment (offset 0).
    first = frag & (direction == "tx") & (pk["ip_frag_off"].to_numpy() == 0)
    rows = pk[first]
    is_test = klass[first] == FRAGTEST
    what = np.where(is_test, "fragmentation test", "fragmented datagram")
    msg = join_text(what, " sent ", src[first], " -> ", dst[first], " (IP ID ", rows["ip_id"].to_numpy(), ")")
    out.append(make_events(rows, "fragments.sent", msg, class_filter("ip.fragment", s),
                           [{"fragtest": bool(t), "ip_id": int(i)} for t, i in zip(is_test, rows["ip_id"], strict=True)]))
    # Received trains: complete or not, one event per train at the receiver.
    recv = frag & (direction == "rx")
    rrows = pk[recv].assign(_src=src[recv], _dst=dst[recv], _k=klass[recv])
    if not rrows.empty:
        status = text(rrows["reasm_status"])
        rrows = rrows.assign(_status=status)
        grouped = rrows.groupby(["capture", "ip_src", "ip_dst", "ip_id"], observed=True, sort=False)
        heads = grouped.head(1).copy()
        counts = grouped.agg(n=("frame", "size"), biggest=("ip_len", "max")).reset_index()
        heads = heads.merge(counts, on=["capture", "ip_src", "ip_dst", "ip_id"], how="left").set_index(heads.index)
        complete = heads["_status"].to_numpy() == "complete"
        what = np.where(heads["_k"].to_numpy() == FRAGTEST, "fragmentation test", "fragmented datagram")
        for mask, event, verb in ((complete, "fragments.reassembled", " reassembled at "),
                                  (~complete, "fragments.incomplete", " never completed at ")):
            sel = heads[mask]
            msg = join_text(what[mask], " from ", sel["_src"].to_numpy(), verb, sel["_dst"].to_numpy(), " (",
                            sel["n"].to_numpy(), " fragments seen, IP ID ", sel["ip_id"].to_numpy(), ")")
            out.append(make_events(sel, event, msg, class_filter("ip.fragment", s),
                                   [{"fragtest": bool(k == FRAGTEST), "fragments": int(n), "largest_ip_len": int(b)}
                                    for k, n, b in zip(sel["_k"], sel["n"], sel["biggest"], strict=True)]))
    # Trains sent toward a captured host of which not one fragment arrived.
    delivery = tl.delivery
    if not delivery.empty and len(rows):
        sent_all = pk[frag & (direction == "tx")]
        d = delivery.reindex(sent_all.index)
        got = sent_all.assign(_deliv=d["delivered"].fillna(False).astype(bool).to_numpy(),
                              _check=d["checkable"].fillna(False).astype(bool).to_numpy())
        per_train = got.groupby(["capture", "ip_src", "ip_dst", "ip_id"], observed=True)[["_deliv", "_check"]].any()
        lost_keys = per_train[(~per_train["_deliv"]) & per_train["_check"]].reset_index()
        if not lost_keys.empty:
            keyed = rows.assign(_i=np.arange(len(rows)))
            for c in ("capture", "ip_src", "ip_dst"):
                keyed[c] = text(keyed[c])
                lost_keys[c] = text(lost_keys[c])
            hit = keyed.merge(lost_keys[["capture", "ip_src", "ip_dst", "ip_id"]], on=["capture", "ip_src", "ip_dst", "ip_id"])
            idx = hit["_i"].to_numpy()
            lost_rows = rows.iloc[idx]
            msg = join_text(np.where(klass[first][idx] == FRAGTEST, "fragmentation test", "fragmented datagram"),
                            " ", src[first][idx], " -> ", dst[first][idx], ": no fragment reached ", dst[first][idx])
            out.append(make_events(lost_rows, "fragments.lost", msg, class_filter("ip.fragment", s),
                                   [{"fragtest": bool(k == FRAGTEST)} for k in klass[first][idx]]))
    return out
