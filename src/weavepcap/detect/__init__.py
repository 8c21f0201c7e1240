"""Detectors: the aligned packet table in, named events (facts, each citing a frame) out."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from weavepcap.detect.base import EVENT_COLUMNS, Timeline, empty_events
from weavepcap.detect.control import detect_control
from weavepcap.detect.delivery import match_delivery
from weavepcap.detect.heartbeats import detect_heartbeats
from weavepcap.detect.hosts import detect_hosts
from weavepcap.detect.pmtu import detect_pmtu

# name -> meaning. Every event a detector emits is declared here (a test holds that).
EVENTS: dict[str, str] = {
    "fastdp.heartbeat_sent": "a fastdp VXLAN heartbeat left its host (IP length = overlay MTU + 50)",
    "fastdp.heartbeat_received": "a fastdp heartbeat arrived at its destination host",
    "fastdp.heartbeat_lost": "a fastdp heartbeat the receiver's capture should show but does not",
    "fastdp.heartbeat_acked": "the receiver acked fastdp heartbeats over TCP 6783 (fastdp works that way)",
    "fastdp.heartbeat_size": "first fastdp heartbeat of a path and size: heartbeat IP/frame length and the overlay MTU",
    "fastdp.data": "first container frame over fastdp on a path, in each capture",
    "fastdp.esp_sent": "first ESP (encrypted fastdp) packet of a path sent",
    "fastdp.esp_received": "first ESP packet of a path received",
    "sleeve.heartbeat_sent": "a sleeve UDP 6783 heartbeat left its host",
    "sleeve.heartbeat_received": "a sleeve heartbeat arrived at its destination host",
    "sleeve.heartbeat_lost": "a sleeve heartbeat the receiver's capture should show but does not",
    "sleeve.heartbeat_acked": "the receiver acked sleeve heartbeats over TCP 6783",
    "sleeve.fragtest_acked": "the receiver confirmed over TCP that the fragmentation test reassembled",
    "sleeve.pmtu_probe": "a sleeve PMTU verification/discovery frame sent (its IP length is the size under test)",
    "sleeve.pmtu_probe_received": "a sleeve PMTU verification frame arrived (the path carries its IP length)",
    "sleeve.pmtu_verified": "the receiver confirmed a sleeve PMTU over TCP (the MTU it quotes)",
    "icmp.frag_needed": "ICMP 3/4 or ICMPv6 too-big: next-hop MTU, sender (router or the host itself), what it quotes",
    "fragments.sent": "a fragmented datagram (sleeve fragmentation test or other) sent: its first fragment",
    "fragments.reassembled": "a fragment train completed at the receiver",
    "fragments.incomplete": "a fragment train the receiver saw only part of",
    "fragments.lost": "a fragment train of which no fragment reached the captured receiver",
    "packet.lost": "another special packet (PMTU probe, TCP 6783 segment, ESP) that left one host and never reached the other",
    "mode.sleeve_after_fastdp": "first sleeve data on a path after its fastdp heartbeats went unacked",
    "host.tx_stopped": "a host's last transmitted frame, after which its peers kept sending to it",
    "host.silent": "a host that is sent Weave traffic but never sends anything",
    "tcp.connect_attempt": "first SYN of a TCP 6783 connection",
    "tcp.connected": "SYN-ACK of a TCP 6783 connection",
    "tcp.features": "a peer's features map on TCP 6783: its Name, NickName (host name) and ShortID",
    "tcp.refused": "RST answering a TCP 6783 SYN (nobody listening, or a firewall rejecting)",
    "tcp.reset_early": "RST after connect but before both sides sent the Weave handshake",
    "tcp.reset": "RST after a working session: Weave's normal close (SO_LINGER 0), not a fault",
    "tcp.retransmission": "a TCP 6783 segment sent again (same sequence number)",
}

Detector = Callable[[Timeline], list[pd.DataFrame]]
DETECTORS: tuple[Detector, ...] = (detect_heartbeats, detect_pmtu, detect_control, detect_hosts)

__all__ = ["EVENTS", "EVENT_COLUMNS", "DETECTORS", "Timeline", "detect_events", "match_delivery"]


def detect_events(tl: Timeline) -> pd.DataFrame:
    """Run every detector; events sorted by (time, host, capture, frame)."""
    if tl.delivery.empty:
        tl.delivery = match_delivery(tl)
    parts = [df for det in DETECTORS for df in det(tl) if not df.empty]
    if not parts:
        return empty_events()
    events = pd.concat(parts, ignore_index=True)
    unknown = set(events["event"]) - set(EVENTS)
    if unknown:  # a detector emitted an undeclared name: a programming error, caught by the tests
        raise ValueError(f"undeclared events: {sorted(unknown)}")
    return events.sort_values(["t_ns", "host", "capture", "frame", "event"], kind="stable").reset_index(drop=True)
