"""Host events: a host that stops transmitting while traffic to it goes on, and a host that never sends."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.classes import WEAVE_CLASSES
from weavepcap.detect.base import Timeline, empty_events, make_events, text

STALL_MIN_RX_FRAMES = 3  # frames still arriving after the host's last transmission
STALL_MIN_SECONDS = 1.0  # ... over at least this long
SILENT_MIN_FRAMES = 3  # frames sent to a host that never answers


def detect_hosts(tl: Timeline) -> list[pd.DataFrame]:
    """host.tx_stopped (with the last frame it sent) and host.silent."""
    pk = tl.packets
    if pk.empty:
        return [empty_events()]
    out: list[pd.DataFrame] = []
    src_host = text(pk["src_host"])
    dst_host = text(pk["dst_host"])
    t = pk["t_ns"].to_numpy()
    retrans = _retransmitted(tl)
    capture_host = text(pk["host"])
    direction = text(pk["dir"])
    for host, info in tl.hosts.items():
        if info.captures:
            # The host's own capture shows what it sent and what kept arriving.
            view = capture_host == host
            sent = view & (src_host == host)
            to_host = (dst_host == host) & (src_host != host) & (src_host != "")
        elif info.addresses:
            # No capture of its own: its peers' captures show the last frame that arrived from it and
            # what they kept sending to it (weaker: the path back could be cut instead).
            view = np.ones(len(pk), dtype=bool)
            sent = src_host == host
            to_host = (dst_host == host) & (direction == "tx")
        else:
            continue
        if not sent.any():
            continue
        last_idx = int(np.flatnonzero(sent)[np.argmax(t[sent])])
        last_t = int(t[last_idx])
        after = to_host & view & (t > last_t)
        n_after = int(after.sum())
        span_s = (int(t[after].max()) - last_t) / 1e9 if n_after else 0.0
        if n_after < STALL_MIN_RX_FRAMES or span_s < STALL_MIN_SECONDS:
            continue
        # The host's own capture shows the peers still talking to it: it went quiet, not the network.
        retrans_after = int((after & retrans).sum())
        rows = pk.iloc[[last_idx]]
        msg = (f"{host} sent nothing after this frame while its peers sent {n_after} more frames to it over "
               f"{span_s:.1f} s ({retrans_after} TCP retransmissions)")
        if not info.captures:
            msg = msg.replace("sent nothing after this frame", "was last heard in this frame") + \
                " (seen from its peers' captures)"
        out.append(make_events(rows, "host.tx_stopped", msg, "",
                               [{"host": host, "frames_after": n_after, "seconds_after": round(span_s, 3),
                                 "retransmissions_after": retrans_after, "own_capture": bool(info.captures)}]))
    out.append(_silent(tl))
    return out


def _retransmitted(tl: Timeline) -> np.ndarray:
    """TCP segments carrying a sequence number already seen with data from the same side in the same capture."""
    pk = tl.packets
    tcp = (pk["ip_proto"].to_numpy() == 6) & ((pk["l4_payload_len"].to_numpy() > 0) |
                                              ((pk["tcp_flags"].to_numpy() & 0x12) == 0x02))
    key = pd.DataFrame({"c": text(pk["capture"]), "s": text(pk["ip_src"]), "d": text(pk["ip_dst"]),
                        "sp": pk["sport"].to_numpy(), "dp": pk["dport"].to_numpy(), "q": pk["tcp_seq"].to_numpy()})
    dup = np.zeros(len(pk), dtype=bool)
    dup[np.flatnonzero(tcp)] = key[tcp].duplicated().to_numpy()
    return dup


def _silent(tl: Timeline) -> pd.DataFrame:
    """Weave peers that other hosts keep sending to but that are never seen sending anything."""
    pk = tl.packets
    weave = np.isin(text(pk["klass"]), WEAVE_CLASSES)
    senders = set(text(pk["ip_src"])) - {""}
    dsts = text(pk["ip_dst"])
    # Count each frame once: as its sender's capture shows it where there is one, else as received.
    sent = text(pk["dir"]) == "tx"
    seen_once = sent | ~np.isin(text(pk["src_host"]), sorted(tl.captured_hosts))
    targets = pd.Series(dsts[weave & (dsts != "") & seen_once])
    counts = targets.value_counts()
    rows = []
    owner = {a: h for h, i in tl.hosts.items() for a in i.addresses}
    silent_hosts = {h for h, i in tl.hosts.items() if i.captures and not i.addresses}
    for addr, n in counts.items():
        if addr in senders or n < SILENT_MIN_FRAMES:
            continue
        first = pk[weave & (dsts == addr)].iloc[[0]]
        name = owner.get(str(addr), "")
        rows.append(make_events(first, "host.silent",
                                f"{name or addr} never sent anything, though {n} Weave frames were sent to it",
                                "", [{"address": str(addr), "frames_to": int(n), "host": name,
                                      "has_capture": bool(name and tl.hosts[name].captures)}]))
    # A capture that only shows Weave traffic between other named hosts is a tap or a router on the
    # path (an observer), not a silent peer: only frames addressed to no named host count.
    to_named_host = np.isin(dsts, sorted(owner))
    for host in sorted(silent_hosts):
        mine = pk[(text(pk["host"]) == host) & weave & ~to_named_host]
        if len(mine) < SILENT_MIN_FRAMES:
            continue
        rows.append(make_events(mine.iloc[[0]], "host.silent",
                                f"{host}'s own capture shows it sending nothing ({len(mine)} Weave frames received)",
                                "", [{"address": "", "frames_to": len(mine), "host": host, "has_capture": True}]))
    return pd.concat(rows, ignore_index=True) if rows else empty_events()
