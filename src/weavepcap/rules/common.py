"""Facts several rules share: per-path heartbeat delivery, overlay MTU arithmetic, path naming."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from weavepcap.detect.base import text
from weavepcap.detect.heartbeats import overlay_acks
from weavepcap.rules.base import Context
from weavepcap.wire import TCP_ACK, TCP_RST, TCP_SYN, max_overlay_mtu


@dataclass(frozen=True)
class HeartbeatPath:
    """Heartbeats of one kind on one direction between two addresses."""

    src_addr: str
    dst_addr: str
    src: str  # host name, else address
    dst: str
    sent: int  # seen leaving the sender (its own capture)
    received: int  # seen arriving in the receiver's capture
    checkable: int  # sent while the receiver's capture was running
    delivered: int  # of those, seen at the receiver
    acked: bool  # the receiver acked them over TCP
    ip_len: int
    frame_len: int
    overlay_mtu: int
    receiver_captured: bool
    first_ns: int

    @property
    def name(self) -> str:
        return f"{self.src} -> {self.dst}"

    @property
    def failed(self) -> bool:
        """Heartbeats went out and nothing says one arrived."""
        return (self.sent > 0 or self.checkable > 0) and self.delivered == 0 and self.received == 0 and not self.acked


def heartbeat_paths(ctx: Context, klass: str) -> list[HeartbeatPath]:
    pk = ctx.packets
    if pk.empty:
        return []
    k = text(pk["klass"])
    rows = pk[k == klass]
    if rows.empty:
        return []
    direction = text(rows["dir"])
    ack_kind = "fastdp.hb_ack" if klass == "weave.fastdp.heartbeat" else "sleeve.hb_ack"
    acks = overlay_acks(ctx.tl)
    acked_pairs = set()
    if not acks.empty:
        a = acks[acks["ack_kind"] == ack_kind]
        acked_pairs = set(zip(text(a["ip_dst"]), text(a["ip_src"]), strict=True))
    d = ctx.tl.delivery.reindex(rows.index) if not ctx.tl.delivery.empty else None
    checkable = d["checkable"].fillna(False).astype(bool).to_numpy() if d is not None else np.zeros(len(rows), bool)
    delivered = d["delivered"].fillna(False).astype(bool).to_numpy() if d is not None else np.zeros(len(rows), bool)
    frame = pd.DataFrame({
        "s": text(rows["ip_src"]), "d": text(rows["ip_dst"]), "sh": text(rows["src_host"]), "dh": text(rows["dst_host"]),
        "tx": direction == "tx", "rx": direction == "rx", "chk": checkable & (direction == "tx"),
        "dl": delivered & (direction == "tx"), "len": rows["ip_len"].to_numpy(), "wl": rows["wirelen"].to_numpy(),
        "mtu": rows["overlay_mtu"].to_numpy(), "t": rows["t_ns"].to_numpy(),
    })
    out = []
    for (s, dd), g in frame.groupby(["s", "d"], sort=False):
        sh = g["sh"].iloc[0] or s
        dh = g["dh"].iloc[0] or dd
        tx = g[g["tx"]] if g["tx"].any() else g
        out.append(HeartbeatPath(
            src_addr=s, dst_addr=dd, src=sh, dst=dh, sent=int(g["tx"].sum()), received=int(g["rx"].sum()),
            checkable=int(g["chk"].sum()), delivered=int(g["dl"].sum()), acked=(s, dd) in acked_pairs,
            ip_len=int(tx["len"].max()), frame_len=int(tx["wl"].max()), overlay_mtu=int(tx["mtu"].max()),
            receiver_captured=ctx.has_capture(g["dh"].iloc[0]), first_ns=int(g["t"].min()),
        ))
    return out


def overlay_limits(path_mtu: int, ipv6: bool = False) -> dict[str, int]:
    """Largest overlay MTU a path carries: unencrypted path - 50; with ESP the largest x with 52 + roundup4(x + 32) <= path."""
    return {"max_overlay_mtu": max_overlay_mtu(path_mtu, ipv6=ipv6),
            "max_overlay_mtu_encrypted": max_overlay_mtu(path_mtu, encrypted=True, ipv6=ipv6)}


def rows_of(events: pd.DataFrame, column: str, values: set[str]) -> pd.DataFrame:
    if events.empty:
        return events
    return events[events[column].isin(values)]


def fastdp_offered_not_working(ctx: Context) -> bool:
    """Both peers run fastdp (overlay control uses forwarder index 1 for sleeve) but no fastdp heartbeat
    was ever acked or received: fastdp did not come up, and these captures do not show why."""
    pk = ctx.packets
    if pk.empty:
        return False
    offered = bool(((text(pk["ctl_msg"]) == "overlay_ctl") & (pk["ctl_overlay_index"].to_numpy() == 1)).any())
    if not offered:
        return False
    working = [p for p in heartbeat_paths(ctx, "weave.fastdp.heartbeat") if p.delivered or p.received or p.acked]
    acks = overlay_acks(ctx.tl)
    fast_acked = not acks.empty and bool((acks["ack_kind"] == "fastdp.hb_ack").any())
    return not working and not fast_acked and ctx.class_frames("weave.fastdp.data") == 0


def overlay_facts(ctx: Context) -> dict[str, object]:
    """The path MTU the captures prove (largest IP packet that arrived between Weave hosts) and the fastdp
    heartbeat size: what most verdicts quote."""
    from weavepcap.detect.paths import summarize_paths

    facts: dict[str, object] = {}
    paths = summarize_paths(ctx.tl)
    lows = [p.path_mtu_low for p in paths if p.path_mtu_low]
    if lows:
        facts["path_mtu"] = max(lows)
    hb = heartbeat_paths(ctx, "weave.fastdp.heartbeat")
    if hb:
        first = min(hb, key=lambda p: p.first_ns)
        facts.update(heartbeat_ip_len=first.ip_len, heartbeat_frame_len=first.frame_len, overlay_mtu=first.overlay_mtu)
    return facts


def control_counts(ctx: Context) -> dict[str, int]:
    """TCP 6783 connections attempted (distinct SYN 4-tuples) and reset (distinct 4-tuples with an RST), each
    counted once however many captures show it."""
    cached = ctx.tl.cache.get("control_counts")
    if cached is not None:
        return dict(cached)  # type: ignore[call-overload]
    pk = ctx.packets
    if pk.empty:
        return {"syn_attempts": 0, "connections": 0, "resets": 0}
    port = ctx.settings.weave_port
    tcp = (pk["ip_proto"].to_numpy() == 6) & ((pk["sport"].to_numpy() == port) | (pk["dport"].to_numpy() == port))
    flags = pk["tcp_flags"].to_numpy()
    want = tcp & (((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) | ((flags & TCP_RST) != 0))  # SYNs and RSTs only
    rows = pk[want]
    a = list(zip(text(rows["ip_src"]), rows["sport"].to_numpy().tolist(), strict=True))
    b = list(zip(text(rows["ip_dst"]), rows["dport"].to_numpy().tolist(), strict=True))
    conn = [(x, y) if x < y else (y, x) for x, y in zip(a, b, strict=True)]
    f = rows["tcp_flags"].to_numpy()
    attempts = len({c for c, fl in zip(conn, f, strict=True) if (fl & (TCP_SYN | TCP_ACK)) == TCP_SYN})
    resets = len({c for c, fl in zip(conn, f, strict=True) if fl & TCP_RST})
    out = {"syn_attempts": attempts, "connections": attempts, "resets": resets}
    ctx.tl.cache["control_counts"] = out
    return dict(out)
