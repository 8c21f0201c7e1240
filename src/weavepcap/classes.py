"""Traffic class names (a contract: JSON, rules and reports use them) and what each one means."""

from __future__ import annotations

# name -> one-line meaning. Order is the display order.
CLASSES: dict[str, str] = {
    "weave.control": "TCP 6783 mesh control stream (handshake `weave` + version, gossip, overlay control)",
    "weave.control.heartbeat": "TCP 6783 heartbeat message (body 00, or 17-byte encrypted body)",
    "weave.sleeve.heartbeat": "UDP 6783 sleeve heartbeat: zero Ethernet header + 8-byte connection UID, DF",
    "weave.sleeve.fragtest": "UDP 6783 60001-byte fragmentation test (fragments of a 60049-byte datagram, DF clear)",
    "weave.sleeve.pmtu_verify": "UDP 6783 zero-filled DF PMTU verification frame sized to the PMTU under test",
    "weave.sleeve.pmtu_discovery": "UDP 6783 60000-byte DF PMTU discovery probe (only on loopback-class MTUs)",
    "weave.sleeve.data": "UDP 6783 sleeve datagram whose frame chain parses exactly (container frames)",
    "weave.sleeve.encrypted": "UDP 6783 datagram that is not a clear chain: NaCl-encrypted sleeve",
    "weave.fastdp.heartbeat": "UDP 6784 VXLAN with an all-zero inner Ethernet header: fastdp heartbeat (inner = 14 + overlay MTU)",
    "weave.fastdp.data": "UDP 6784 VXLAN carrying a container frame; VNI = dst short id << 12 | src short id",
    "weave.fastdp.esp": "IP protocol 50 between Weave peers: encrypted fast datapath",
    "icmp.frag_needed": "ICMP type 3 code 4 (fragmentation needed), with next-hop MTU and the quoted packet",
    "icmpv6.packet_too_big": "ICMPv6 type 2 (packet too big), with MTU and the quoted packet",
    "ip.fragment": "IPv4/IPv6 fragment not attributed to a Weave class",
    "overlay.vxlan": "VXLAN that is not Weave's (4789, 8472, or configured ports)",
    "overlay.geneve": "Geneve (UDP 6081)",
    "arp": "ARP",
    "other": "anything else",
}

CLASS_NAMES: tuple[str, ...] = tuple(CLASSES)
WEAVE_CLASSES: tuple[str, ...] = tuple(c for c in CLASS_NAMES if c.startswith("weave."))
