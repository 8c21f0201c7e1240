"""Hand-made packet tables for rule tests: two hosts behind a router, packets sent, delivered or dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from weavepcap.api import Analysis, CaptureInput, analyze_inputs
from weavepcap.model import CaptureRecord
from weavepcap.schema import PACKET_COLUMNS, empty_columns

T0 = 1_790_000_000_000_000_000  # ns, an arbitrary epoch for the scenes
ADDR = {"host-a": "10.0.1.2", "host-b": "10.0.2.2", "router": "10.0.1.1"}
MAC = {"host-a": 0x02AA00000A01, "host-b": 0x02BB00000B02, "router-a": 0x02CC0000C001, "router-b": 0x02CC0000C002}
SECOND = 1_000_000_000


def fastdp_hb(ip_len: int = 1460) -> dict[str, Any]:
    return {"ip_proto": 17, "sport": 41000, "dport": 6784, "ip_df": True, "ip_len": ip_len, "udp_len": ip_len - 20,
            "klass": "weave.fastdp.heartbeat", "overlay_mtu": ip_len - 50, "tun_type": 1, "vxlan_flags": 8,
            "inner_zero_eth": True, "inner_len": ip_len - 36}


def sleeve_hb() -> dict[str, Any]:
    return {"ip_proto": 17, "sport": 6783, "dport": 6783, "ip_df": True, "ip_len": 70, "klass": "weave.sleeve.heartbeat"}


def sleeve_data(ip_len: int = 300) -> dict[str, Any]:
    return {"ip_proto": 17, "sport": 6783, "dport": 6783, "ip_df": True, "ip_len": ip_len, "klass": "weave.sleeve.data"}


def pmtu_verify(ip_len: int) -> dict[str, Any]:
    return {"ip_proto": 17, "sport": 6783, "dport": 6783, "ip_df": True, "ip_len": ip_len,
            "klass": "weave.sleeve.pmtu_verify", "overlay_mtu": ip_len}


def esp(ip_len: int = 200) -> dict[str, Any]:
    return {"ip_proto": 50, "ip_df": True, "ip_len": ip_len, "klass": "weave.fastdp.esp"}


def tcp(sport: int, dport: int, flags: int, seq: int, payload: int = 0, **extra: Any) -> dict[str, Any]:
    row = {"ip_proto": 6, "sport": sport, "dport": dport, "tcp_flags": flags, "tcp_seq": seq,
           "l4_payload_len": payload, "ip_len": 40 + payload, "ip_df": True, "klass": "weave.control"}
    row.update(extra)
    return row


@dataclass
class Scene:
    """Captures being built: each packet goes into the sender's capture and, if delivered, the receiver's."""

    captured: tuple[str, ...] = ("host-a", "host-b")
    offsets_s: dict[str, float] = field(default_factory=dict)  # true clock offsets to bake into the captures
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 100
    seq: dict[str, int] = field(default_factory=dict)  # next TCP sequence number per side
    ports: dict[str, tuple[int, int]] = field(default_factory=dict)  # (sport, dport) per side

    def capture_name(self, host: str) -> str:
        return f"{host}-eth0.pcap"

    def _put(self, host: str, t_s: float, fields: dict[str, Any]) -> None:
        if host not in self.captured:
            return
        rows = self.rows.setdefault(host, [])
        ts = T0 + int(round((t_s + self.offsets_s.get(host, 0.0)) * SECOND))
        rows.append({**fields, "ts_ns": ts})

    def send(self, src: str, dst: str, t_s: float, fields: dict[str, Any], *, delivered: bool = True,
             latency_s: float = 0.0005) -> None:
        """One IP packet src -> dst through the router (TTL 64 at the sender, 63 at the receiver)."""
        self.next_id += 1
        base = {"ip_version": 4, "ip_src": ADDR[src], "ip_dst": ADDR[dst], "ip_id": self.next_id, "ip_ttl": 64,
                "ip_frag_off": 0, "linktype": 1, "wirelen": int(fields.get("ip_len", 60)) + 14}
        base.update(fields)
        out = {**base, "eth_src": MAC[src], "eth_dst": MAC[f"router-{src[-1]}"]}
        self._put(src, t_s, out)
        if delivered:
            inn = {**base, "ip_ttl": 63, "eth_src": MAC[f"router-{dst[-1]}"], "eth_dst": MAC[dst]}
            self._put(dst, t_s + latency_s, inn)

    def icmp_from_router(self, to: str, t_s: float, mtu: int, quoted: dict[str, Any]) -> None:
        fields = {"ip_version": 4, "ip_src": ADDR["router"], "ip_dst": ADDR[to], "ip_ttl": 64, "ip_proto": 1,
                  "ip_len": 576, "icmp_type": 3, "icmp_code": 4, "icmp_mtu": mtu, "klass": "icmp.frag_needed",
                  "linktype": 1, "wirelen": 590, "eth_src": MAC[f"router-{to[-1]}"], "eth_dst": MAC[to], **quoted}
        self._put(to, t_s, fields)

    def handshake(self, t_s: float = 0.0, dialer: str = "host-a", acceptor: str = "host-b") -> None:
        """TCP 6783 connect + both `weave` headers + features with NickName = host name."""
        p = 45000
        self.send(dialer, acceptor, t_s, tcp(p, 6783, 0x02, 1000))
        self.send(acceptor, dialer, t_s + 0.001, tcp(6783, p, 0x12, 5000))
        self.send(dialer, acceptor, t_s + 0.002, tcp(p, 6783, 0x18, 1001, 8, ctl_msg="handshake"))
        self.send(acceptor, dialer, t_s + 0.003, tcp(6783, p, 0x18, 5001, 8, ctl_msg="handshake"))
        self.send(dialer, acceptor, t_s + 0.004, tcp(p, 6783, 0x18, 1009, 180, ctl_msg="features",
                                                     ctl_nickname=dialer))
        self.send(acceptor, dialer, t_s + 0.005, tcp(6783, p, 0x18, 5009, 180, ctl_msg="features",
                                                     ctl_nickname=acceptor))
        self.seq = {dialer: 1189, acceptor: 5189}
        self.ports = {dialer: (p, 6783), acceptor: (6783, p)}

    def ack(self, sender: str, receiver: str, t_s: float, index: int, subtag: int, pmtu: int = -1,
            delivered: bool = True) -> None:
        """An overlay-control message over the TCP connection (sender acks what receiver sent)."""
        sp, dp = self.ports[sender]
        seq = self.seq[sender]
        self.seq[sender] += 7
        self.send(sender, receiver, t_s, tcp(sp, dp, 0x18, seq, 7, ctl_msg="overlay_ctl", ctl_overlay_index=index,
                                             ctl_overlay_subtag=subtag, ctl_pmtu=pmtu), delivered=delivered)

    def close(self, t_s: float, by: str = "host-a") -> None:
        """Weave's normal close: RST (SO_LINGER 0) after a working session."""
        other = "host-b" if by == "host-a" else "host-a"
        sp, dp = self.ports[by]
        self.send(by, other, t_s, tcp(sp, dp, 0x14, self.seq[by]))

    def inputs(self) -> list[CaptureInput]:
        out = []
        for host in self.captured:
            rows = sorted(self.rows.get(host, []), key=lambda r: r["ts_ns"])
            frame = frame_of(rows, self.capture_name(host), host)
            classes: dict[str, dict[str, int]] = {}
            for k, g in frame.groupby("klass"):
                classes[str(k)] = {"frames": len(g), "bytes": int(g["wirelen"].sum())}
            rec = CaptureRecord(path=self.capture_name(host), name=self.capture_name(host), host=host,
                                frames=len(frame), bytes=int(frame["wirelen"].sum()) if len(frame) else 0,
                                first_ns=int(frame["ts_ns"].min()) if len(frame) else None,
                                last_ns=int(frame["ts_ns"].max()) if len(frame) else None,
                                link_types=["ETHERNET"], classes=classes, damage=[])
            out.append(CaptureInput(rec, frame))
        return out

    def analyze(self, **kwargs: Any) -> Analysis:
        return analyze_inputs(self.inputs(), **kwargs)


def frame_of(rows: list[dict[str, Any]], capture: str, host: str) -> pd.DataFrame:
    """A packet table (PACKET_COLUMNS + capture + host) from row dicts; unnamed columns keep their missing value."""
    cols = empty_columns(len(rows))
    for i, row in enumerate(rows):
        for k, v in row.items():
            cols[k][i] = v
    cols["frame"] = np.arange(1, len(rows) + 1, dtype="int64")
    if len(rows):
        cols["klass"] = np.where(cols["klass"] == "", "other", cols["klass"])
    frame = pd.DataFrame({c.name: cols[c.name] for c in PACKET_COLUMNS})
    frame["capture"] = capture
    frame["host"] = host
    return frame


def healthy_scene(captured: tuple[str, ...] = ("host-a", "host-b"), seconds: int = 4) -> Scene:
    """Both overlays up: handshake, sleeve and fastdp heartbeats acked both ways, some data, RST at the end."""
    s = Scene(captured=captured)
    s.handshake(0.0)
    for t in range(seconds):
        for a, b in (("host-a", "host-b"), ("host-b", "host-a")):
            s.send(a, b, t + 0.1, sleeve_hb())
            s.send(a, b, t + 0.2, fastdp_hb(1426))
            s.send(a, b, t + 0.3, {"ip_proto": 17, "sport": 41000, "dport": 6784, "ip_df": True, "ip_len": 134,
                                   "klass": "weave.fastdp.data", "tun_type": 1})
    for a, b in (("host-a", "host-b"), ("host-b", "host-a")):
        s.ack(b, a, 0.15, 1, 1)
        s.ack(b, a, 0.25, 0, 0)
    s.close(seconds + 0.5)
    return s
