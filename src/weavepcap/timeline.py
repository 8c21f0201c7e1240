"""One timeline across hosts: which addresses each host sends from, per-host clock offsets, the merged table."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from weavepcap.model import HostInfo

# The fields that identify one IP packet wherever it is captured (the same heartbeat, fragment or TCP
# segment on both ends). TTL and link-layer fields change hop by hop, so they are not part of it.
MATCH_KEY: tuple[str, ...] = (
    "ip_src",
    "ip_dst",
    "ip_proto",
    "ip_id",
    "ip_len",
    "ip_frag_off",
    "sport",
    "dport",
    "tcp_seq",
    "tcp_ack",
    "tcp_flags",
)
INITIAL_TTLS = (64, 128, 255)  # a packet still carrying one of these has not been routed yet
ONE_WAY_LATENCY_BOUND_S = 0.001  # assumed bound when packets were matched in one direction only
NICKNAME_WEIGHT = 1000.0  # a handshake whose NickName is the host's own name outweighs any count
LOOPBACK_PREFIXES = ("127.", "::1")
# Text columns detectors read, stored as plain object arrays once (the others keep their dtype).
ALIGNED_TEXT_COLUMNS = ("ip_src", "ip_dst", "q_ip_src", "q_ip_dst", "klass", "ctl_msg", "ctl_nickname",
                        "ctl_peer_name", "reasm_status", "capture", "host")
LINK_LOCAL_PREFIXES = ("169.254.", "fe80:")  # never a Weave peer's underlay address


@dataclass(frozen=True)
class ClockEstimate:
    """A host's clock offset relative to the reference host."""

    offset_s: float
    uncertainty_s: float | None
    source: str  # reference | estimated | forced | unknown
    matches: int


def _text(series: pd.Series) -> pd.Series:
    if series.dtype == object:
        return series.fillna("")
    return pd.Series(series.to_numpy(dtype=object, na_value=""), index=series.index, dtype=object)


def _is_loopback_capture(frames: pd.DataFrame) -> bool:
    """Loopback: BSD null link type, or Ethernet framing whose MAC addresses are all zero (Linux `lo`)."""
    if frames.empty:
        return False
    if (frames["linktype"] == 0).all():
        return True
    eth = frames["linktype"] == 1
    if not eth.all():
        return False
    zero = (frames["eth_src"] == 0) & (frames["eth_dst"] == 0)
    return bool(zero.mean() >= 0.9)


def _own_mac(frames: pd.DataFrame) -> int:
    """The MAC that appears in (almost) every unicast frame of an Ethernet capture: the capturing NIC's."""
    macs = pd.concat([frames["eth_src"], frames["eth_dst"]], ignore_index=True).astype("uint64")
    unicast = macs[(macs != 0) & ((macs >> np.uint64(40)) & np.uint64(1) == 0)]
    if unicast.empty:
        return 0
    counts = unicast.value_counts()
    # On a link between two machines both MACs are in every frame; the capturing one sends packets
    # that have not been routed yet (initial TTL), while what it receives may have crossed a router.
    candidates = counts[counts >= 0.5 * counts.iloc[0]].index
    if len(candidates) == 1:
        return int(candidates[0])
    fresh = np.isin(frames["ip_ttl"].to_numpy(), INITIAL_TTLS)
    src = frames["eth_src"].to_numpy().astype("uint64")
    best = max(candidates, key=lambda m: (int((fresh & (src == np.uint64(m))).sum()), int(counts[m])))
    return int(best)


def transmitted_mask(frames: pd.DataFrame) -> np.ndarray:
    """Frames of ONE capture that the capturing machine itself sent (see README: host addresses)."""
    n = len(frames)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if _is_loopback_capture(frames):
        return np.ones(n, dtype=bool)  # everything on `lo` was sent by this machine
    linktype = frames["linktype"].to_numpy()
    tx = np.zeros(n, dtype=bool)
    sll = np.isin(linktype, (113, 276))
    tx |= sll & (frames["pkt_dir"].to_numpy() == 4)
    eth = linktype == 1
    if eth.any():
        mac = _own_mac(frames[eth])
        if mac:
            tx |= eth & (frames["eth_src"].to_numpy().astype("uint64") == np.uint64(mac))
    raw = np.isin(linktype, (101, 228, 229))
    tx |= raw & np.isin(frames["ip_ttl"].to_numpy(), INITIAL_TTLS)  # no link layer: best guess by TTL
    return tx


def resolve_addresses(packets: pd.DataFrame, host_names: list[str]) -> dict[str, list[str]]:
    """Host → the IP addresses it sends from, each address given to the one host that explains it best.

    Score per (host, address): frames the host's own captures show it sending from that address
    (weight 1 with an initial TTL, 0.2 once routed, so a router's forwarded copies lose to the
    sender's own capture), plus a large bonus for a TCP 6783 handshake whose NickName is the host name.
    An address goes to the host for which it is the largest share of its score, then the largest score.
    """
    result: dict[str, list[str]] = {h: [] for h in host_names}
    if packets.empty:
        return result
    parts: list[pd.DataFrame] = []
    for _, frames in packets.groupby("capture", sort=False, observed=True):
        tx = transmitted_mask(frames)
        chosen = frames.loc[tx, ["host", "ip_src", "ip_ttl"]]
        if chosen.empty:
            continue
        weight = np.where(np.isin(chosen["ip_ttl"].to_numpy(), INITIAL_TTLS), 1.0, 0.2)
        parts.append(pd.DataFrame({"host": _text(chosen["host"]).to_numpy(),
                                   "addr": _text(chosen["ip_src"]).to_numpy(), "w": weight,
                                   "lo": _is_loopback_capture(frames)}))
    nick = packets[_text(packets["ctl_nickname"]) != ""]
    if not nick.empty:
        # The handshake's NickName is the host name; a capture named after the host and its interface
        # (`host-b-eth0`) counts too.
        nicks = _text(nick["ctl_nickname"]).to_numpy()
        names = _text(nick["host"]).to_numpy()
        same = np.array([n == h or h.startswith(n + "-") or h.startswith(n + "_") for n, h in zip(nicks, names, strict=True)],
                        dtype=bool)
        if same.any():
            parts.append(pd.DataFrame({"host": _text(nick["host"])[same].to_numpy(),
                                       "addr": _text(nick["ip_src"])[same].to_numpy(),
                                       "w": NICKNAME_WEIGHT, "lo": False}))
    if not parts:
        return result
    scores = pd.concat(parts, ignore_index=True)
    scores = scores[~scores["addr"].isin(("", "::", "0.0.0.0")) & ~scores["addr"].str.startswith(LOOPBACK_PREFIXES)
                    & ~scores["addr"].str.lower().str.startswith(LINK_LOCAL_PREFIXES)]
    # An address seen only on `lo` (e.g. the host's overlay address talking to itself) is not one it sends
    # from on the underlay, unless the host has no other capture.
    wire_hosts = set(scores.loc[~scores["lo"], "host"])
    wire_addrs = set(scores.loc[~scores["lo"], "addr"])
    keep = ~scores["lo"] | scores["addr"].isin(wire_addrs) | ~scores["host"].isin(wire_hosts)
    scores = scores[keep]
    totals = scores.groupby(["addr", "host"], observed=True)["w"].sum().reset_index()
    # A router's captures show both ends' packets as its "own" (the same frames as each host's capture):
    # a host whose claims concentrate on one address beats one whose claims are split.
    totals["share"] = totals["w"] / totals.groupby("host")["w"].transform("sum")
    totals = totals.sort_values(["addr", "share", "w", "host"], ascending=[True, False, False, True])
    best = totals.drop_duplicates("addr", keep="first").sort_values(["host", "w"], ascending=[True, False])
    for host, addr in zip(best["host"], best["addr"], strict=True):
        if host in result:
            result[host].append(addr)
    _silent_host_addresses(packets, result)
    return result


def _silent_host_addresses(packets: pd.DataFrame, result: dict[str, list[str]]) -> None:
    """A host that sends nothing still receives: give it the unclaimed address its captures are sent to most."""
    claimed = {a for addrs in result.values() for a in addrs}
    for host, addrs in result.items():
        if addrs:
            continue
        mine = packets[_text(packets["host"]).to_numpy() == host]
        dst = _text(mine["ip_dst"])
        dst = dst[~dst.isin(claimed) & (dst != "") & ~dst.str.startswith(LOOPBACK_PREFIXES)
                  & ~dst.str.lower().str.startswith(LINK_LOCAL_PREFIXES + ("ff", "224.", "255."))]
        if not dst.empty:
            top = str(dst.value_counts().idxmax())
            result[host].append(top)
            claimed.add(top)


def _host_of(addresses: dict[str, list[str]]) -> dict[str, str]:
    return {addr: host for host, addrs in addresses.items() for addr in addrs}


def _unique_per_host(frames: pd.DataFrame) -> pd.DataFrame:
    """Rows whose match key occurs once in the host's captures (ambiguous ones cannot pair up)."""
    keyed = frames[list(MATCH_KEY) + ["ts_ns"]]
    return keyed.drop_duplicates(list(MATCH_KEY), keep=False)


def _pair_offset(ref: pd.DataFrame, other: pd.DataFrame, ref_addrs: set[str], other_addrs: set[str]
                 ) -> tuple[float, float, int] | None:
    """Offset of `other`'s clock relative to `ref`'s from packets both captured, with uncertainty."""
    merged = ref.merge(other, on=list(MATCH_KEY), suffixes=("_r", "_o"))
    if merged.empty:
        return None
    delta = (merged["ts_ns_o"].to_numpy() - merged["ts_ns_r"].to_numpy()) / 1e9
    src = _text(merged["ip_src"]).to_numpy()
    from_ref = np.isin(src, list(ref_addrs))
    from_other = np.isin(src, list(other_addrs))
    n = int(len(merged))
    if from_ref.any() and from_other.any():
        # ref→other: delta = offset + latency; other→ref: delta = offset - latency.
        high = float(delta[from_ref].min())
        low = float(delta[from_other].max())
        return (high + low) / 2, abs(high - low) / 2, n
    if from_ref.any():
        return float(delta[from_ref].min()), ONE_WAY_LATENCY_BOUND_S, n
    if from_other.any():
        return float(delta[from_other].max()), ONE_WAY_LATENCY_BOUND_S, n
    median = float(np.median(delta))
    return median, float(np.max(np.abs(delta - median))) + ONE_WAY_LATENCY_BOUND_S, n


def estimate_offsets(
    packets: pd.DataFrame,
    host_names: list[str],
    addresses: dict[str, list[str]],
    forced: dict[str, float] | None = None,
) -> dict[str, ClockEstimate]:
    """Per-host clock offset against the first host, chained through hosts that share packets."""
    forced = dict(forced or {})
    estimates: dict[str, ClockEstimate] = {}
    if not host_names:
        return estimates
    reference = host_names[0]
    ip_rows = packets[packets["ip_version"] > 0] if not packets.empty else packets
    per_host = {h: _unique_per_host(ip_rows[_text(ip_rows["host"]) == h]) for h in host_names} \
        if not ip_rows.empty else {}
    pair: dict[tuple[str, str], tuple[float, float, int]] = {}
    for i, a in enumerate(host_names):
        for b in host_names[i + 1:]:
            if a not in per_host or b not in per_host:
                continue
            got = _pair_offset(per_host[a], per_host[b], set(addresses.get(a, [])), set(addresses.get(b, [])))
            if got is not None:
                pair[(a, b)] = got
                pair[(b, a)] = (-got[0], got[1], got[2])
    # Breadth-first from the reference: each hop adds its offset and its uncertainty.
    known: dict[str, tuple[float, float, int]] = {reference: (0.0, 0.0, 0)}
    queue = deque([reference])
    while queue:
        here = queue.popleft()
        for there in host_names:
            if there in known or (here, there) not in pair:
                continue
            off, unc, n = pair[(here, there)]
            known[there] = (known[here][0] + off, known[here][1] + unc, n)
            queue.append(there)
    for host in host_names:
        if host in forced:
            estimates[host] = ClockEstimate(float(forced[host]), 0.0, "forced", known.get(host, (0, 0, 0))[2])
        elif host == reference:
            estimates[host] = ClockEstimate(0.0, 0.0, "reference", 0)
        elif host in known:
            off, unc, n = known[host]
            estimates[host] = ClockEstimate(off, unc, "estimated", n)
        else:
            estimates[host] = ClockEstimate(0.0, None, "unknown", 0)
    return estimates


def align(packets: pd.DataFrame, hosts: dict[str, HostInfo]) -> pd.DataFrame:
    """The merged table: aligned time `t_ns`, direction seen by the capturing host, source/destination hosts.

    Text columns become plain object arrays of str (no NaN), converted once here so detectors read them free.
    """
    out = packets.copy()
    for column in ALIGNED_TEXT_COLUMNS:
        if column in out.columns:
            out[column] = pd.Series(_text(out[column]).to_numpy(), index=out.index, dtype=object)
    host_col = _text(out["host"])
    offsets_ns = {h: int(round(info.clock_offset_s * 1e9)) for h, info in hosts.items()}
    out["t_ns"] = out["ts_ns"].to_numpy() - host_col.map(offsets_ns).fillna(0).astype("int64").to_numpy()
    owner = _host_of({h: info.addresses for h, info in hosts.items()})
    src_host = _text(out["ip_src"]).map(owner).fillna("")
    dst_host = _text(out["ip_dst"]).map(owner).fillna("")
    out["src_host"] = pd.Series(src_host.to_numpy(), index=out.index, dtype=object)
    out["dst_host"] = pd.Series(dst_host.to_numpy(), index=out.index, dtype=object)
    own_src = src_host.to_numpy() == host_col.to_numpy()
    own_dst = dst_host.to_numpy() == host_col.to_numpy()
    out["dir"] = pd.Series(np.where(own_src, "tx", np.where(own_dst, "rx", "")).astype(object), index=out.index,
                           dtype=object)
    out = out.sort_values(["t_ns", "host", "capture", "frame"], kind="stable").reset_index(drop=True)
    return out
