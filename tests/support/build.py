"""Frame builders for tests and generators: Ethernet, VLAN, SLL, IPv4/IPv6, UDP/TCP/ICMP, VXLAN, Weave payloads."""

from __future__ import annotations

import socket
import struct

ZERO_MAC = bytes(6)
MAC_A = bytes.fromhex("02aa00000a01")
MAC_B = bytes.fromhex("02bb00000b02")


def mac_int(mac: bytes) -> int:
    return int.from_bytes(mac, "big")


def ethernet(
    payload: bytes,
    *,
    ethertype: int = 0x0800,
    dst: bytes = MAC_B,
    src: bytes = MAC_A,
    tags: tuple[tuple[int, int], ...] = (),
) -> bytes:
    """Ethernet II; tags = ((tpid, vid), ...) outermost first."""
    # each tag's TPID sits where the type field would be: dst src [tpid tci]... type payload
    tagged = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in tags)
    return dst + src + tagged + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, *, ethertype: int = 0x0800, pkt_type: int = 4, addr: bytes = MAC_A) -> bytes:
    """Linux cooked capture v1 header (16 bytes)."""
    return (
        struct.pack("!HHH", pkt_type, 1, len(addr))
        + addr.ljust(8, b"\0")
        + struct.pack("!H", ethertype)
        + payload
    )


def sll2(
    payload: bytes, *, ethertype: int = 0x0800, pkt_type: int = 0, addr: bytes = MAC_A, ifindex: int = 2
) -> bytes:
    """Linux cooked capture v2 header (20 bytes)."""
    return (
        struct.pack("!HHIHBB", ethertype, 0, ifindex, 1, pkt_type, len(addr)) + addr.ljust(8, b"\0") + payload
    )


def null_loopback(payload: bytes, family: int, *, big_endian: bool = False) -> bytes:
    return struct.pack(">I" if big_endian else "<I", family) + payload


def ipv4(
    payload: bytes,
    *,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    proto: int = 17,
    ident: int = 1,
    df: bool = True,
    mf: bool = False,
    frag_off: int = 0,
    ttl: int = 64,
    options: bytes = b"",
    total_length: int | None = None,
) -> bytes:
    """IPv4 header (+ options, padded to 4 bytes) + payload; checksum left 0."""
    options = options + bytes(-len(options) % 4)
    ihl = 5 + len(options) // 4
    length = total_length if total_length is not None else ihl * 4 + len(payload)
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_off // 8)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        length,
        ident,
        flags,
        ttl,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header + options + payload


def ipv6(
    payload: bytes,
    *,
    src: str = "fd00::1",
    dst: str = "fd00::2",
    next_header: int = 17,
    hop_limit: int = 64,
    payload_length: int | None = None,
) -> bytes:
    """IPv6 fixed header + payload (which may start with extension headers)."""
    length = payload_length if payload_length is not None else len(payload)
    return (
        struct.pack("!IHBB", 0x60000000, length, next_header, hop_limit)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + payload
    )


def ipv6_ext(next_header: int, body: bytes = b"\0" * 6) -> bytes:
    """A generic extension header (hop-by-hop, routing, destination options): body padded to 8n-2 bytes."""
    body = body + bytes(-(len(body) + 2) % 8)
    return struct.pack("!BB", next_header, (len(body) + 2) // 8 - 1) + body


def ipv6_fragment(next_header: int, *, offset: int = 0, more: bool = False, ident: int = 0x1234) -> bytes:
    return struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)


def udp(
    payload: bytes, *, sport: int = 40000, dport: int = 53, csum: int = 0, length: int | None = None
) -> bytes:
    return (
        struct.pack("!HHHH", sport, dport, length if length is not None else 8 + len(payload), csum) + payload
    )


def tcp(
    payload: bytes = b"",
    *,
    sport: int = 40000,
    dport: int = 80,
    seq: int = 1,
    ack: int = 0,
    flags: int = 0x18,
    options: bytes = b"",
) -> bytes:
    options = options + bytes(-len(options) % 4)
    offset = (5 + len(options) // 4) << 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset, flags, 65535, 0, 0) + options + payload


def icmp(icmp_type: int, code: int, rest: bytes = b"\0\0\0\0", payload: bytes = b"") -> bytes:
    return struct.pack("!BBH", icmp_type, code, 0) + rest + payload


def frag_needed(quoted: bytes, mtu: int) -> bytes:
    """ICMP type 3 code 4 with next-hop MTU, quoting `quoted` (IP header + as much as the sender kept)."""
    return icmp(3, 4, struct.pack("!HH", 0, mtu), quoted)


def packet_too_big(quoted: bytes, mtu: int) -> bytes:
    return icmp(2, 0, struct.pack("!I", mtu), quoted)


def vxlan(inner: bytes, vni: int, *, flags: int = 0x08) -> bytes:
    return struct.pack("!B3xI", flags, vni << 8) + inner


def geneve(inner: bytes, vni: int, *, options: bytes = b"", protocol: int = 0x6558) -> bytes:
    options = options + bytes(-len(options) % 4)
    return struct.pack("!BBHI", len(options) // 4, 0, protocol, vni << 8) + options + inner


def fastdp_heartbeat_frame(conn_uid: int, overlay_mtu: int) -> bytes:
    """The inner frame of a fastdp heartbeat: zero Ethernet header, UID, own length, zero padding to 14 + MTU."""
    size = 14 + overlay_mtu
    return bytes(14) + struct.pack("!QH", conn_uid, size) + bytes(size - 24)


def sleeve(
    frames: list[bytes], *, sender: bytes = MAC_A, src_peer: bytes = MAC_A, dst_peer: bytes = MAC_B
) -> bytes:
    """Unencrypted sleeve payload: sender name, then (src peer, dst peer, length, frame) per frame."""
    return sender + b"".join(src_peer + dst_peer + struct.pack("!H", len(f)) + f for f in frames)


def sleeve_heartbeat_frame(conn_uid: int) -> bytes:
    return bytes(14) + struct.pack("!Q", conn_uid)


def control_message(body: bytes) -> bytes:
    """A mesh protocol v2 message: 4-byte big-endian length, then the body."""
    return struct.pack("!I", len(body)) + body


def gob_uint(value: int) -> bytes:
    """gob's unsigned integer: one byte below 128, else the negated byte count and the big-endian bytes."""
    if value < 0x80:
        return bytes([value])
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([256 - len(raw)]) + raw


def gob_string(text: bytes) -> bytes:
    return gob_uint(len(text)) + text


def features_body(fields: dict[str, str]) -> bytes:
    """An unencrypted features map as weave's gob encoder writes it (type definition, then the value)."""
    type_def = bytes.fromhex("0eff81040102ff8200010c010c0000")
    pairs = b"".join(gob_string(k.encode()) + gob_string(v.encode()) for k, v in fields.items())
    value = b"\xff\x82\x00" + bytes([len(fields)]) + pairs
    return type_def + gob_uint(len(value)) + value
