"""Generate a large, realistic Weave Net capture (classic pcap, Ethernet) for benchmarks, from byte templates."""

from __future__ import annotations

import argparse
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Four Weave peers on one L2 segment, a router that sends ICMP frag-needed, and some background hosts.
PEERS = ["10.32.0.11", "10.32.0.12", "10.32.0.13", "10.32.0.14"]
PEER_MACS = [0x0242AC110011, 0x0242AC110012, 0x0242AC110013, 0x0242AC110014]
PEER_NAMES = [0x02AA00000011, 0x02AA00000012, 0x02AA00000013, 0x02AA00000014]  # Weave peer names
SHORT_IDS = [0x11, 0x2B3, 0x7C4, 0xFFE]  # 12-bit peer short IDs -> VNI = dst << 12 | src
ROUTER, ROUTER_MAC = "10.32.0.1", 0x00163E000001
BACKGROUND = ["192.168.50.10", "192.168.50.20", "203.0.113.7", "198.51.100.23"]
BACKGROUND_MAC = 0x00163E0000AA
WEAVE_PORT, FASTDP_PORT = 6783, 6784
OVERLAY_MTU = 1376  # Weave >= 1.9 default: fastdp heartbeat IP = 1426, frame = 1440
FRAGTEST_SIZE = 60001  # sleeve fragmentation test inner frame
UNDERLAY_MTU = 1500
START_S = 1_795_000_000  # 2026-11-18, like the test writers
FRAMES_PER_SECOND = 40_000  # mean capture rate: 2 M frames span ~50 s of capture time

RECORD_HEADER = 16
TCP_ACK, TCP_PSH, TCP_SYN = 0x10, 0x08, 0x02


def ip_bytes(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def checksum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst: int, src: int, ethertype: int, payload: bytes, vlan: int | None = None) -> bytes:
    header = dst.to_bytes(6, "big") + src.to_bytes(6, "big")
    if vlan is not None:
        header += struct.pack("!HH", 0x8100, vlan)
    return header + struct.pack("!H", ethertype) + payload


def ipv4(
    src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, df: bool = False, mf: bool = False,
    offset: int = 0, ttl: int = 64, total_len: int | None = None,
) -> bytes:
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (offset // 8)
    length = total_len if total_len is not None else 20 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, ident, flags, ttl, proto, 0, ip_bytes(src), ip_bytes(dst))
    header = header[:10] + struct.pack("!H", checksum16(header)) + header[12:]
    return header + payload


def ipv6(src: bytes, dst: bytes, next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64, src, dst) + payload


def udp(sport: int, dport: int, payload: bytes, *, length: int | None = None) -> bytes:
    # Checksum 0 (not computed): what Weave's DF sleeve path and the kernel VXLAN tunnel send.
    return struct.pack("!HHHH", sport, dport, length if length is not None else 8 + len(payload), 0) + payload


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0) + payload


def vxlan(vni: int, inner: bytes) -> bytes:
    return struct.pack("!II", 0x08000000, vni << 8) + inner


def peer_frame(a: int, b: int, l3: bytes, *, vlan: int | None = None) -> bytes:
    return ethernet(PEER_MACS[b], PEER_MACS[a], 0x0800, l3, vlan)


def container_tcp(a: int, b: int, payload_len: int, flags: int, *, reply: bool = False) -> bytes:
    """An inner Ethernet frame of the connection from a container on peer a to one on peer b (10.40.0.0/16)."""
    src, dst, sport, dport = f"10.40.{a}.5", f"10.40.{b}.9", 43210 + a, 8080
    src_mac, dst_mac = 0x7A0000000000 | a, 0x7A0000000100 | b
    if reply:
        src, dst, sport, dport, src_mac, dst_mac = dst, src, dport, sport, dst_mac, src_mac
    inner_ip = ipv4(src, dst, 6, tcp(sport, dport, 1000, 1000, flags, bytes(payload_len)))
    return ethernet(dst_mac, src_mac, 0x0800, inner_ip, None)


def fastdp(a: int, b: int, inner: bytes, *, df: bool = True) -> bytes:
    vni = (SHORT_IDS[b] << 12) | SHORT_IDS[a]
    sport = 32768 + (a * 7919 + b * 104729) % 20000  # the kernel hashes the inner flow into the source port
    return peer_frame(a, b, ipv4(PEERS[a], PEERS[b], 17, udp(sport, FASTDP_PORT, vxlan(vni, inner)), df=df))


def fastdp_heartbeat_inner(uid: int) -> bytes:
    inner_len = 14 + OVERLAY_MTU
    return bytes(14) + uid.to_bytes(8, "big") + inner_len.to_bytes(2, "big") + bytes(inner_len - 24)


def sleeve(a: int, b: int, inner_frames: list[bytes], *, df: bool) -> bytes:
    chain = PEER_NAMES[a].to_bytes(6, "big")
    for inner in inner_frames:
        chain += PEER_NAMES[a].to_bytes(6, "big") + PEER_NAMES[b].to_bytes(6, "big") + len(inner).to_bytes(2, "big")
        chain += inner
    return peer_frame(a, b, ipv4(PEERS[a], PEERS[b], 17, udp(WEAVE_PORT, WEAVE_PORT, chain), df=df))


def control(a: int, b: int, message: bytes, flags: int = TCP_ACK | TCP_PSH) -> bytes:
    return peer_frame(a, b, ipv4(PEERS[a], PEERS[b], 6, tcp(51000 + a, WEAVE_PORT, 7000, 9000, flags, message), df=True))


def fragment_train(a: int, b: int) -> list[bytes]:
    """The sleeve fragmentation test: one 60049-byte non-DF UDP datagram cut at the underlay MTU."""
    inner = bytes(FRAGTEST_SIZE)
    chain = (
        PEER_NAMES[a].to_bytes(6, "big") + PEER_NAMES[a].to_bytes(6, "big") + PEER_NAMES[b].to_bytes(6, "big")
        + len(inner).to_bytes(2, "big") + inner
    )
    datagram = udp(WEAVE_PORT, WEAVE_PORT, chain)
    step = (UNDERLAY_MTU - 20) // 8 * 8
    frames = []
    for offset in range(0, len(datagram), step):
        piece = datagram[offset : offset + step]
        more = offset + step < len(datagram)
        frames.append(peer_frame(a, b, ipv4(PEERS[a], PEERS[b], 17, piece, mf=more, offset=offset)))
    return frames


def icmp_frag_needed(quoted_ip: bytes, to: str, mtu: int) -> bytes:
    """ICMP 3/4 from the router, quoting the first 548 bytes of the packet that was too big (576-byte rule)."""
    quote = quoted_ip[:548]
    body = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + quote
    body = body[:2] + struct.pack("!H", checksum16(body)) + body[4:]
    return ethernet(PEER_MACS[PEERS.index(to)], ROUTER_MAC, 0x0800, ipv4(ROUTER, to, 1, body, ttl=255))


def arp(a: int, target: str, reply: bool) -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2 if reply else 1) + PEER_MACS[a].to_bytes(6, "big")
    body += ip_bytes(PEERS[a]) + (bytes(6) if not reply else PEER_MACS[0].to_bytes(6, "big")) + ip_bytes(target)
    return ethernet(0xFFFFFFFFFFFF if not reply else PEER_MACS[0], PEER_MACS[a], 0x0806, body + bytes(18))


def background_tcp(k: int, payload_len: int, flags: int, vlan: int | None, *, reply: bool = False) -> bytes:
    """One direction of background HTTPS connection k (server to client unless `reply`)."""
    src, dst, sport, dport = BACKGROUND[2 + k % 2], BACKGROUND[k % 2], 443, 40000 + k
    src_mac, dst_mac = ROUTER_MAC, BACKGROUND_MAC
    if reply:
        src, dst, sport, dport, src_mac, dst_mac = dst, src, dport, sport, dst_mac, src_mac
    segment = tcp(sport, dport, 5000, 5000, flags, bytes(payload_len))
    return ethernet(dst_mac, src_mac, 0x0800, ipv4(src, dst, 6, segment, df=True), vlan)


def background_dns(k: int, response: bool) -> bytes:
    question = b"\x04host\x05weave\x05local\x00" + struct.pack("!HH", 1, 1)  # A IN
    if response:
        answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + ip_bytes(PEERS[k % 4])
        payload = struct.pack("!HHHHHH", 0, 0x8180, 1, 1, 0, 0) + question + answer
    else:
        payload = struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 0) + question
    src, dst, sport, dport = BACKGROUND[k % 2], "192.168.50.1", 50000 + k, 53
    if response:
        src, dst, sport, dport = dst, src, dport, sport
    return ethernet(BACKGROUND_MAC, ROUTER_MAC, 0x0800, ipv4(src, dst, 17, udp(sport, dport, payload)))


def background_ipv6(k: int, payload_len: int) -> bytes:
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db80000000000000000000000%02x" % (0x10 + k))
    return ethernet(ROUTER_MAC, BACKGROUND_MAC, 0x86DD, ipv6(src, dst, 6, tcp(41000 + k, 443, 1, 1, TCP_ACK, bytes(payload_len))))


@dataclass
class Unit:
    """A group of frames that appear together (one packet, or a whole fragment train) and its weight."""

    name: str
    frames: list[bytes]
    weight: float  # relative number of occurrences
    same_ip_id: bool = False  # every frame of one occurrence shares an IP ID (fragment trains)
    ack_step: int = 1448  # pure ACKs of a flow without data in this capture: advance per frame
    acks: int = -1  # index of the unit whose data this pure ACK acknowledges (ack = everything sent so far)


@dataclass
class Templates:
    """All frame templates back to back (each with room for its record header) plus per-frame patch points."""

    blob: np.ndarray
    start: np.ndarray  # int64: start of each template's record (header included) in blob
    length: np.ndarray  # int64: record length (16 + frame)
    ip_off: np.ndarray  # int64: offset of the outer IPv4 header inside the record, -1 if none
    counter_at: np.ndarray  # int64: a 32-bit number that grows per frame (TCP seq/ack, ESP seq), -1 if none
    counter_step: np.ndarray  # int64: its growth per frame of this template
    id16_at: np.ndarray  # int64: a 16-bit ID shared by one occurrence (DNS transaction ID), -1 if none
    acked: np.ndarray  # int64: for a pure-ACK template, the data template it acknowledges, else -1
    sent: np.ndarray  # int64: frames of each template written so far (drives sequence numbers)
    units: list[Unit] = field(default_factory=list)
    unit_templates: list[np.ndarray] = field(default_factory=list)


def build_units() -> list[Unit]:
    """The traffic mix. Weights are occurrences; frame sizes make ~750 bytes per record on average."""
    units: list[Unit] = []
    pairs = [(a, b) for a in range(4) for b in range(4) if a != b]
    for a, b in pairs:
        units.append(Unit("fastdp.data.bulk", [fastdp(a, b, container_tcp(a, b, OVERLAY_MTU - 40, TCP_ACK))], 1.8))
        ack = fastdp(b, a, container_tcp(a, b, 0, TCP_ACK, reply=True))
        units.append(Unit("fastdp.data.ack", [ack], 1.2, acks=len(units) - 1))
        units.append(Unit("fastdp.heartbeat", [fastdp(a, b, fastdp_heartbeat_inner(0x1111 * (a + 1) * (b + 1)))], 0.01))
        uid = (0x5EED0000 + a * 16 + b).to_bytes(8, "big")
        units.append(Unit("sleeve.heartbeat", [sleeve(a, b, [bytes(14) + uid], df=True)], 0.01))
        units.append(Unit("sleeve.data", [sleeve(a, b, [container_tcp(a, b, 900, TCP_ACK | TCP_PSH)], df=True)], 0.3))
        units.append(Unit("sleeve.data.small", [sleeve(a, b, [container_tcp(a, b, 0, TCP_ACK)] * 3, df=True)], 0.2))
        units.append(Unit("control.heartbeat", [control(a, b, bytes.fromhex("0000000100"))], 0.02))
        gossip = bytes.fromhex("0000012005") + bytes.fromhex("0b0c0008") + b"topology" + bytes(272)
        units.append(Unit("control.gossip", [control(a, b, gossip)], 0.02))
        units.append(Unit("control.ack", [control(b, a, b"", TCP_ACK)], 0.03))
        units.append(Unit("esp", [peer_frame(a, b, ipv4(PEERS[a], PEERS[b], 50, struct.pack("!II", 0x1000 + a, 7) + bytes(1400), df=True))], 0.02))
    units.append(Unit("sleeve.fragtest", fragment_train(0, 1), 0.0015, same_ip_id=True))
    units.append(Unit("sleeve.fragtest", fragment_train(2, 3), 0.0015, same_ip_id=True))
    # A router between peer 0 and 3 whose next hop is 1454: frag-needed quoting a 1426-byte heartbeat.
    heartbeat_ip = fastdp(0, 3, fastdp_heartbeat_inner(0xABCDEF))[14:]
    units.append(Unit("icmp.frag_needed", [icmp_frag_needed(heartbeat_ip, PEERS[0], 1454)], 0.02))
    units.append(Unit("arp", [arp(1, PEERS[0], False), arp(0, PEERS[1], True)], 0.05))
    for k in range(8):
        vlan = 120 if k >= 6 else None  # a quarter of the background flows arrive 802.1Q-tagged
        units.append(Unit("background.tcp.bulk", [background_tcp(k, 1448, TCP_ACK, vlan)], 0.8))
        ack = background_tcp(k, 0, TCP_ACK, vlan, reply=True)
        units.append(Unit("background.tcp.ack", [ack], 0.4, acks=len(units) - 1))
        units.append(Unit("background.dns", [background_dns(k, False), background_dns(k, True)], 0.15))
        units.append(Unit("background.ipv6", [background_ipv6(k, 1200)], 0.1))
    return units


def encrypted_sleeve(a: int, b: int, cipher_len: int, *, df: bool, counter: int = 5) -> bytes:
    """A NaCl-encrypted sleeve datagram: sender name, DF flag + counter, Poly1305 tag, ciphertext (random-looking)."""
    flag = (1 << 63) if df else 0
    noise = np.random.default_rng(cipher_len + a * 31 + b).integers(0, 256, 16 + cipher_len, dtype=np.uint8).tobytes()
    payload = PEER_NAMES[a].to_bytes(6, "big") + (flag | counter).to_bytes(8, "big") + noise
    return peer_frame(a, b, ipv4(PEERS[a], PEERS[b], 17, udp(WEAVE_PORT, WEAVE_PORT, payload), df=df))


def background_udp(k: int, payload_len: int) -> bytes:
    """Background UDP (QUIC-like) between two non-Weave hosts."""
    src, dst = BACKGROUND[k % 2], BACKGROUND[2 + k % 2]
    return ethernet(ROUTER_MAC, BACKGROUND_MAC, 0x0800, ipv4(src, dst, 17, udp(52000 + k, 443, bytes(payload_len))))


def build_incident_units() -> list[Unit]:
    """An MTU incident's mix, by share of frames: 44% fastdp VXLAN, 10% sleeve (mostly encrypted), 8% IPv4
    fragments, 5% TCP 6783 control, 0.5% ICMP 3/4, the rest background TCP/UDP/ARP/IPv6/VLAN."""
    units: list[Unit] = []
    pairs = [(a, b) for a in range(4) for b in range(4) if a != b]

    def add(name: str, frames: list[bytes], share: float, **kw: object) -> None:
        units.append(Unit(name, frames, share / len(frames) / len(pairs_or_one[0]), **kw))  # type: ignore[arg-type]

    pairs_or_one = [pairs]
    for a, b in pairs:
        add("fastdp.data.bulk", [fastdp(a, b, container_tcp(a, b, OVERLAY_MTU - 40, TCP_ACK))], 0.25)
        add("fastdp.data.ack", [fastdp(b, a, container_tcp(a, b, 0, TCP_ACK, reply=True))], 0.18, acks=len(units) - 1)
        add("fastdp.heartbeat", [fastdp(a, b, fastdp_heartbeat_inner(0x1111 * (a + 1) * (b + 1)))], 0.01)
        add("sleeve.encrypted.bulk", [encrypted_sleeve(a, b, 1300, df=True)], 0.05)
        add("sleeve.encrypted.small", [encrypted_sleeve(a, b, 60, df=True)], 0.02)
        uid = (0x5EED0000 + a * 16 + b).to_bytes(8, "big")
        add("sleeve.heartbeat", [sleeve(a, b, [bytes(14) + uid], df=True)], 0.005)
        add("sleeve.data", [sleeve(a, b, [container_tcp(a, b, 900, TCP_ACK | TCP_PSH)], df=True)], 0.025)
        add("control.heartbeat", [control(a, b, bytes.fromhex("0000000100"))], 0.005)
        gossip = bytes.fromhex("0000012005") + bytes.fromhex("0b0c0008") + b"topology" + bytes(272)
        add("control.gossip", [control(a, b, gossip)], 0.02)
        add("control.ack", [control(b, a, b"", TCP_ACK)], 0.025)
    pairs_or_one[0] = [(0, 1)]
    add("sleeve.fragtest", fragment_train(0, 1), 0.04, same_ip_id=True)
    add("sleeve.fragtest", fragment_train(2, 3), 0.04, same_ip_id=True)
    heartbeat_ip = fastdp(0, 3, fastdp_heartbeat_inner(0xABCDEF))[14:]
    add("icmp.frag_needed", [icmp_frag_needed(heartbeat_ip, PEERS[0], 1454)], 0.005)
    add("arp", [arp(1, PEERS[0], False), arp(0, PEERS[1], True)], 0.01)
    pairs_or_one[0] = [(0, 1)] * 8
    for k in range(8):
        vlan = 120 if k >= 6 else None  # a quarter of the background flows arrive 802.1Q-tagged
        add("background.tcp.bulk", [background_tcp(k, 400, TCP_ACK, vlan)], 0.10)
        add("background.tcp.ack", [background_tcp(k, 0, TCP_ACK, vlan, reply=True)], 0.08, acks=len(units) - 1)
        add("background.udp", [background_udp(k, 420)], 0.06)
        add("background.dns", [background_dns(k, False), background_dns(k, True)], 0.025)
        add("background.ipv6", [background_ipv6(k, 600)], 0.04)
    return units


MIXES = {"weave": build_units, "incident": build_incident_units}


def patch_points(frame: bytes, ack_step: int) -> tuple[int, int, int]:
    """Where a frame's per-frame counter and per-occurrence ID live: (counter offset, step, id16 offset).

    The counter is the TCP sequence number of a data segment or the acknowledgement number of a pure
    ACK (through VXLAN for fastdp), or the ESP sequence number; the ID is a DNS transaction ID.
    """
    offset = 16 if frame[12:14] == b"\x81\x00" else 12
    ethertype, offset = int.from_bytes(frame[offset : offset + 2], "big"), offset + 2
    if ethertype == 0x86DD:
        return (offset + 44, len(frame) - offset - 60, -1) if frame[offset + 6] == 6 else (-1, 0, -1)
    if ethertype != 0x0800 or int.from_bytes(frame[offset + 6 : offset + 8], "big") & 0x3FFF:
        return -1, 0, -1
    proto, l4 = frame[offset + 9], offset + 20
    if proto == 50:
        return l4 + 4, 1, -1
    if proto == 17:
        ports = int.from_bytes(frame[l4 : l4 + 2], "big"), int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
        if 53 in ports:
            return -1, 0, l4 + 8
        if ports[1] != FASTDP_PORT or frame[l4 + 16 + 12 : l4 + 16 + 14] != b"\x08\x00":
            return -1, 0, -1
        offset = l4 + 16 + 14
        proto, l4 = frame[offset + 9], offset + 20
    if proto != 6:
        return -1, 0, -1
    payload = int.from_bytes(frame[offset + 2 : offset + 4], "big") - 40
    return (l4 + 4, payload, -1) if payload > 0 else (l4 + 8, ack_step, -1)


def build_templates(units: list[Unit]) -> Templates:
    pieces: list[bytes] = []
    starts: list[int] = []
    lengths: list[int] = []
    ip_offsets: list[int] = []
    counters: list[tuple[int, int, int]] = []
    unit_templates: list[np.ndarray] = []
    position = 0
    for unit in units:
        ids = []
        for frame in unit.frames:
            ids.append(len(starts))
            record = bytes(RECORD_HEADER) + frame
            starts.append(position)
            lengths.append(len(record))
            ethertype_at = 16 if frame[12:14] == b"\x81\x00" else 12
            is_ipv4 = frame[ethertype_at : ethertype_at + 2] == b"\x08\x00"
            ip_offsets.append(RECORD_HEADER + ethertype_at + 2 if is_ipv4 else -1)
            counter_at, step, id16_at = patch_points(frame, unit.ack_step)
            counters.append((
                RECORD_HEADER + counter_at if counter_at >= 0 else -1, step, RECORD_HEADER + id16_at if id16_at >= 0 else -1
            ))
            pieces.append(record)
            position += len(record)
        unit_templates.append(np.array(ids, dtype=np.int64))
    return Templates(
        blob=np.frombuffer(b"".join(pieces), dtype=np.uint8),
        start=np.array(starts, dtype=np.int64),
        length=np.array(lengths, dtype=np.int64),
        ip_off=np.array(ip_offsets, dtype=np.int64),
        counter_at=np.array([c[0] for c in counters], dtype=np.int64),
        counter_step=np.array([c[1] for c in counters], dtype=np.int64),
        id16_at=np.array([c[2] for c in counters], dtype=np.int64),
        acked=np.array([
            int(unit_templates[unit.acks][0]) if unit.acks >= 0 else -1 for unit in units for _ in unit.frames
        ], dtype=np.int64),
        sent=np.zeros(len(starts), dtype=np.int64),
        units=units,
        unit_templates=unit_templates,
    )


def file_header(snaplen: int = 262144) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)


def choose_frames(templates: Templates, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Template id and occurrence (unit instance) number of every frame, exactly `frames` long."""
    weights = np.array([u.weight for u in templates.units])
    sizes = np.array([len(t) for t in templates.unit_templates])
    per_unit_frames = weights * sizes
    expected_units = int(frames / (per_unit_frames.sum() / weights.sum())) + 64
    picks = rng.choice(len(templates.units), size=expected_units, p=weights / weights.sum())
    counts = sizes[picks]
    template_ids = np.concatenate([templates.unit_templates[u] for u in picks]) if len(picks) else np.empty(0, np.int64)
    occurrence = np.repeat(np.arange(len(picks)), counts)
    while len(template_ids) < frames:  # rare: top up with single-frame units
        template_ids = np.concatenate([template_ids, template_ids[: frames - len(template_ids)]])
        occurrence = np.concatenate([occurrence, occurrence[: frames - len(occurrence)] + len(picks)])
    return template_ids[:frames], occurrence[:frames]


def render_block(
    templates: Templates, template_ids: np.ndarray, occurrence: np.ndarray, first_frame: int, rng: np.random.Generator
) -> np.ndarray:
    """The bytes of consecutive records: one gather from the template blob, then vectorised patches."""
    lengths = templates.length[template_ids]
    out_start = np.zeros(len(template_ids), dtype=np.int64)
    np.cumsum(lengths[:-1], out=out_start[1:])
    total = int(lengths.sum())
    source = np.arange(total, dtype=np.int64) + np.repeat(templates.start[template_ids] - out_start, lengths)
    out = templates.blob[source]
    del source

    # Record headers: timestamps with Poisson-like gaps; captured and wire lengths equal.
    frame_numbers = np.arange(first_frame, first_frame + len(template_ids), dtype=np.int64)
    ts_us = START_S * 1_000_000 + frame_numbers * (1_000_000 // FRAMES_PER_SECOND) + rng.integers(0, 20, len(frame_numbers))
    header = np.empty((len(template_ids), 4), dtype="<u4")
    header[:, 0] = ts_us // 1_000_000
    header[:, 1] = ts_us % 1_000_000
    header[:, 2] = lengths - RECORD_HEADER
    header[:, 3] = lengths - RECORD_HEADER
    out[out_start[:, None] + np.arange(RECORD_HEADER)] = header.view(np.uint8).reshape(-1, RECORD_HEADER)

    # IPv4 ID: per frame, or shared by every fragment of a train; then a fresh header checksum.
    ip_off = templates.ip_off[template_ids]
    has_ip = ip_off >= 0
    base = out_start[has_ip] + ip_off[has_ip]
    same_id = np.array([u.same_ip_id for u in templates.units for _ in u.frames])[template_ids[has_ip]]
    ident = np.where(same_id, occurrence[has_ip] * 7919, frame_numbers[has_ip]) & 0xFFFF
    out[base + 4] = ident >> 8
    out[base + 5] = ident & 0xFF
    out[base + 10] = 0
    out[base + 11] = 0
    header_bytes = out[base[:, None] + np.arange(20)].astype(np.uint32)
    words = (header_bytes[:, 0::2] << 8) | header_bytes[:, 1::2]
    total16 = words.sum(axis=1)
    total16 = (total16 & 0xFFFF) + (total16 >> 16)
    total16 = (total16 & 0xFFFF) + (total16 >> 16)
    csum = ~total16 & 0xFFFF
    out[base + 10] = csum >> 8
    out[base + 11] = csum & 0xFF

    # Each template is one direction of one flow, so its TCP sequence (data) or acknowledgement
    # (pure ACK) number, or ESP sequence number, advances with every frame as on a real connection;
    # DNS IDs change per query. Constant numbers would make tshark see millions of retransmissions.
    order = np.argsort(template_ids, kind="stable")
    group_start = np.searchsorted(template_ids[order], np.arange(len(templates.start)))
    rank = np.empty(len(template_ids), dtype=np.int64)
    rank[order] = np.arange(len(template_ids)) - group_start[template_ids[order]]
    sent_before = templates.sent[template_ids] + rank
    counter_at = templates.counter_at[template_ids]
    has_counter = counter_at >= 0
    field_at = out_start[has_counter] + counter_at[has_counter]
    number = 1_000_000 + sent_before * templates.counter_step[template_ids]
    # A pure ACK acknowledges all its partner's data sent so far, as a real receiver does: an ACK
    # that lags ever further behind makes tshark's unacked-segment lists grow without bound.
    for ack_template in np.flatnonzero(templates.acked >= 0):
        data_template = templates.acked[ack_template]
        data_seen = templates.sent[data_template] + np.cumsum(template_ids == data_template)
        at = template_ids == ack_template
        number[at] = 1_000_000 + data_seen[at] * templates.counter_step[data_template]
    number = number[has_counter] & 0xFFFFFFFF
    for byte in range(4):
        out[field_at + byte] = (number >> (24 - 8 * byte)) & 0xFF
    id16_at = templates.id16_at[template_ids]
    has_id = id16_at >= 0
    field_at = out_start[has_id] + id16_at[has_id]
    out[field_at] = (occurrence[has_id] >> 8) & 0xFF
    out[field_at + 1] = occurrence[has_id] & 0xFF
    templates.sent += np.bincount(template_ids, minlength=len(templates.start))
    return out


def make_capture(path: Path, frames: int, *, seed: int = 6783, block_frames: int = 16384,
                 mix: str = "weave") -> dict[str, float]:
    """Write the capture (`mix`: a key of MIXES); return frames, bytes and seconds taken."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    templates = build_templates(MIXES[mix]())
    template_ids, occurrence = choose_frames(templates, frames, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("wb") as handle:
        handle.write(file_header())
        written += 24
        for first in range(0, frames, block_frames):
            block = slice(first, min(first + block_frames, frames))
            data = render_block(templates, template_ids[block], occurrence[block], first + 1, rng)
            handle.write(data.tobytes())
            written += len(data)
    return {"frames": frames, "bytes": written, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2_000_000, help="frames to write (default 2,000,000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench.pcap")
    parser.add_argument("--seed", type=int, default=6783)
    parser.add_argument("--mix", choices=sorted(MIXES), default="weave",
                        help="weave: the Weave-heavy mix (default); incident: an MTU incident's mix (see build_incident_units)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be positive")
    result = make_capture(args.out, args.frames, seed=args.seed, mix=args.mix)
    print(
        f"{args.out}: {result['frames']:,} frames, {result['bytes'] / 1e6:,.1f} MB "
        f"in {result['seconds']:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
