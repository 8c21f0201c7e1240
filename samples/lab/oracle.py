"""Ground truth for the samples: traffic class per frame computed from tshark's dissection, not weavepcap's."""

# expected.json is the test oracle of weavepcap's own classifier, so it must not come from it.
# tshark dissects every frame (IP defragmentation off, UDP 6784 and 8472 decoded as VXLAN) and
# the rules below, written from docs/weave-wire-format.md §7 and the class list in
# src/weavepcap/classes.py, turn its fields into class names. Precedence (first match wins):
# fragments, ICMP errors, control heartbeat, control, sleeve (fragtest, discovery, heartbeat,
# verify, data, encrypted), ESP between Weave peers, fastdp (heartbeat, data), other VXLAN, Geneve, ARP, other.

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FIELDS = [
    "frame.number", "frame.len", "frame.time_epoch", "eth.type", "eth.src", "eth.dst",
    "ip.src", "ip.dst", "ip.proto", "ip.len", "ip.id", "ip.flags.df", "ip.flags.mf", "ip.frag_offset",
    "ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.plen", "ipv6.fraghdr.offset", "ipv6.fraghdr.more",
    "ipv6.fraghdr.ident", "udp.srcport", "udp.dstport", "udp.length", "udp.payload",
    "tcp.srcport", "tcp.dstport", "tcp.len", "tcp.payload", "tcp.flags.syn", "tcp.flags.reset",
    "tcp.analysis.retransmission", "icmp.type", "icmp.code", "icmp.mtu", "icmpv6.type", "icmpv6.mtu",
    "vxlan.vni", "arp.opcode", "arp.dst.proto_ipv4", "esp.spi", "esp.sequence",
]
WEAVE_PORT = 6783
FASTDP_PORT = 6784
OTHER_VXLAN_PORTS = (4789, 8472)
GENEVE_PORT = 6081
IP_PROTO_ESP = 50
FRAGTEST_UDP_LENS = (60029, 60053)
FRAGTEST_IP_LENS = (60049, 60073)
ZERO_MAC = "00:00:00:00:00:00"


@dataclass
class Frame:
    """One frame as tshark saw it; list-valued fields keep every occurrence (outer first)."""

    f: dict[str, list[str]]
    klass: str = "other"

    def first(self, name: str) -> str:
        values = self.f.get(name) or [""]
        return values[0]

    def num(self, name: str, default: int = -1) -> int:
        value = self.first(name)
        if not value:
            return default
        return int(value, 16) if value.startswith("0x") else int(value)

    def flag(self, name: str) -> bool:
        return self.first(name) in ("1", "True", "true")

    @property
    def number(self) -> int:
        return self.num("frame.number")

    @property
    def length(self) -> int:
        return self.num("frame.len")

    @property
    def src(self) -> str:
        return self.first("ip.src") or self.first("ipv6.src")

    @property
    def dst(self) -> str:
        return self.first("ip.dst") or self.first("ipv6.dst")


def tshark_frames(path: Path) -> list[Frame]:
    tshark = shutil.which("tshark")
    if tshark is None:
        raise RuntimeError("tshark is not installed")
    args = [tshark, "-n", "-r", str(path), "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
            "-d", f"udp.port=={FASTDP_PORT},vxlan", "-d", "udp.port==8472,vxlan",
            "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=;"]
    for name in FIELDS:
        args += ["-e", name]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    frames = []
    for line in out.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        frames.append(Frame({name: (v.split(";") if v else []) for name, v in zip(FIELDS, cols, strict=True)}))
    classify_frames(frames)
    return frames


def sleeve_chain(payload_hex: str) -> list[bytes] | None:
    """Frames of a clear sleeve datagram, or None when the chain does not consume it exactly."""
    data = bytes.fromhex(payload_hex.replace(":", ""))
    pos, frames = 6, []
    if len(data) < 6 + 14:
        return None
    while pos < len(data):
        if pos + 14 > len(data):
            return None
        length = int.from_bytes(data[pos + 12 : pos + 14], "big")
        pos += 14
        if length < 14 or pos + length > len(data):
            return None
        frames.append(data[pos : pos + length])
        pos += length
    return frames


def classify_frames(frames: list[Frame]) -> None:
    # fragment trains: key -> (udp ports, udp length) from the first fragment
    trains: dict[tuple[str, str, str], tuple[int, int, int]] = {}
    for fr in frames:
        if fr.num("ip.frag_offset", 0) == 0 and fr.flag("ip.flags.mf"):
            key = (fr.src, fr.dst, fr.first("ip.id"))
            trains[key] = (fr.num("udp.srcport"), fr.num("udp.dstport"), fr.num("udp.length"))
        if fr.f.get("ipv6.fraghdr.offset") and fr.num("ipv6.fraghdr.offset", 0) == 0:
            key = (fr.src, fr.dst, fr.first("ipv6.fraghdr.ident"))
            trains[key] = (fr.num("udp.srcport"), fr.num("udp.dstport"), fr.num("udp.length"))
    peers = weave_peers(frames)
    for fr in frames:
        fr.klass = classify_one(fr, trains, peers)


def weave_peers(frames: list[Frame]) -> set[str]:
    """Addresses seen on TCP/UDP 6783 or sending VXLAN to 6784 in this capture: ESP between two is Weave's."""
    peers: set[str] = set()
    for fr in frames:
        proto = fr.num("ip.proto") if fr.f.get("ip.proto") else fr.num("ipv6.nxt")
        if proto not in (6, 17):  # an ICMP error quoting Weave traffic does not make its sender a peer
            continue
        on_weave_port = WEAVE_PORT in (fr.num("tcp.srcport"), fr.num("tcp.dstport"), fr.num("udp.srcport"),
                                       fr.num("udp.dstport"))
        if on_weave_port or (fr.num("udp.dstport") == FASTDP_PORT and fr.f.get("vxlan.vni")):
            peers.update(a for a in (fr.src, fr.dst) if a)
    return peers


def classify_one(fr: Frame, trains: dict[tuple[str, str, str], tuple[int, int, int]],
                 peers: set[str] | frozenset[str] = frozenset()) -> str:
    eth_types = [int(t, 16) for t in fr.f.get("eth.type", [])]
    v4_fragment = bool(fr.f.get("ip.proto")) and (fr.flag("ip.flags.mf") or fr.num("ip.frag_offset", 0) > 0)
    v6_fragment = bool(fr.f.get("ipv6.fraghdr.offset"))
    if v4_fragment or v6_fragment:
        ident = fr.first("ip.id") if v4_fragment else fr.first("ipv6.fraghdr.ident")
        sport, dport, udp_len = trains.get((fr.src, fr.dst, ident), (-1, -1, -1))
        if WEAVE_PORT in (sport, dport) and udp_len in FRAGTEST_UDP_LENS:
            return "weave.sleeve.fragtest"
        return "ip.fragment"
    # the outer header decides: ICMP errors and VXLAN payloads both carry further IP headers
    proto = fr.num("ip.proto") if fr.f.get("ip.proto") else fr.num("ipv6.nxt")
    if proto == 1:
        is_frag_needed = fr.first("icmp.type") == "3" and fr.first("icmp.code") == "4"
        return "icmp.frag_needed" if is_frag_needed else "other"
    if proto == 58:
        return "icmpv6.packet_too_big" if fr.first("icmpv6.type") == "2" else "other"
    tports = (fr.num("tcp.srcport"), fr.num("tcp.dstport"))
    if proto == 6 and WEAVE_PORT in tports:
        if fr.first("tcp.payload").replace(":", "") == "0000000100":
            return "weave.control.heartbeat"
        return "weave.control"
    if proto == IP_PROTO_ESP:  # encrypted fastdp (weave-wire-format §4.4) only between Weave peers
        return "weave.fastdp.esp" if fr.src in peers and fr.dst in peers else "other"
    if proto != 17:
        return "arp" if eth_types and eth_types[0] == 0x0806 else "other"
    sport, dport = fr.num("udp.srcport"), fr.num("udp.dstport")
    ip_len = fr.num("ip.len") if fr.f.get("ip.len") else fr.num("ipv6.plen") + 40
    # IPv6 is never fragmented on the path, so an unfragmented IPv6 packet behaves as DF
    df = fr.flag("ip.flags.df") if fr.f.get("ip.len") else True
    if WEAVE_PORT in (sport, dport):
        udp_len = fr.num("udp.length")
        if (ip_len in FRAGTEST_IP_LENS or udp_len in FRAGTEST_UDP_LENS) and not df:
            return "weave.sleeve.fragtest"
        if df and ip_len >= 60048:
            return "weave.sleeve.pmtu_discovery"
        chain = sleeve_chain(fr.first("udp.payload")) if fr.f.get("udp.payload") else None
        if chain is None:
            return "weave.sleeve.encrypted"
        zero = len(chain) == 1 and chain[0][:14] == bytes(14)
        if zero and len(chain[0]) == 22:
            return "weave.sleeve.heartbeat"
        if zero and df:
            return "weave.sleeve.pmtu_verify"
        return "weave.sleeve.data"
    if dport == FASTDP_PORT and fr.f.get("vxlan.vni"):
        macs = fr.f.get("eth.src", [])[1:2] + fr.f.get("eth.dst", [])[1:2]
        inner_type = eth_types[1] if len(eth_types) > 1 else -1
        if macs == [ZERO_MAC, ZERO_MAC] and inner_type == 0:
            return "weave.fastdp.heartbeat"
        return "weave.fastdp.data"
    if fr.f.get("vxlan.vni") and (sport in OTHER_VXLAN_PORTS or dport in OTHER_VXLAN_PORTS):
        return "overlay.vxlan"
    if GENEVE_PORT in (sport, dport):
        return "overlay.geneve"
    if eth_types and eth_types[0] == 0x0806:
        return "arp"
    return "other"


def class_counts(frames: list[Frame]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for fr in frames:
        counts[fr.klass] = counts.get(fr.klass, 0) + 1
    return dict(sorted(counts.items()))
