"""Per-packet decoder: one frame at a time, every layer, each field read only where it was captured."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from weavepcap.decode.control import ControlTracker
from weavepcap.settings import Settings
from weavepcap.wire import (
    AF_IPV4,
    AF_IPV6,
    COUNTER_MASK,
    ETH_HDR,
    ETH_IPV4,
    ETH_IPV6,
    ETH_TEB,
    GENEVE_HDR,
    ICMP4_ERROR_TYPES,
    ICMP4_NEEDFRAG,
    ICMP4_UNREACH,
    ICMP6_ERROR_TYPES,
    ICMP6_PACKET_TOO_BIG,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXT_AH,
    IPV6_EXT_FRAGMENT,
    IPV6_EXT_GENERIC,
    LT_ETHERNET,
    LT_IPV4,
    LT_IPV6,
    LT_LOOP,
    LT_NULL,
    LT_SLL,
    LT_SLL2,
    MAX_IPV6_EXT_HEADERS,
    MAX_SLEEVE_FRAMES,
    MAX_VLAN_TAGS_SLOW,
    RAW_LINKTYPES,
    SLEEVE_FRAME_HDR,
    SLEEVE_NAME,
    TUN_GENEVE,
    TUN_VXLAN,
    TUNNEL_PROTOS,
    VLAN_TPIDS,
    VXLAN_HDR,
    clip_int8,
    clip_int32,
)

Row = dict[str, object]
IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
ZERO_ETH = bytes(ETH_HDR)


def _uint(buf: bytes, pos: int, width: int, end: int) -> int:
    """Big-endian unsigned integer of `width` bytes at pos, or -1 when it reaches past `end`."""
    if pos < 0 or pos + width > end:
        return -1
    return int.from_bytes(buf[pos : pos + width], "big")


def _put(row: Row, name: str, value: int) -> None:
    """Store a header field that was read (-1 from _uint means it was not captured)."""
    if value >= 0:
        row[name] = value


def ipv4_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, raw)


def ipv6_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, raw)


@dataclass
class Ipv6Walk:
    """Where the IPv6 extension-header chain ends: upper protocol and its offset, fragment header fields."""

    proto: int = -1  # -1: the chain could not be followed within the captured bytes
    upper: int = -1  # offset of the upper-layer header (or of the fragment data after a non-first fragment)
    frag_id: int = -1
    frag_off: int = 0
    frag_mf: bool = False
    frag_data: int = -1  # offset of the fragmentable part (just after the fragment header), -1 if none


def walk_ipv6(buf: bytes, next_header: int, pos: int, end: int) -> Ipv6Walk:
    """Follow extension headers from pos (just after the fixed header) up to the upper-layer protocol."""
    walk = Ipv6Walk()
    for _ in range(MAX_IPV6_EXT_HEADERS):
        if next_header in IPV6_EXT_GENERIC or next_header == IPV6_EXT_AH:
            if pos + 2 > end:
                return walk
            if next_header == IPV6_EXT_AH:
                size = (buf[pos + 1] + 2) * 4
            else:
                size = (buf[pos + 1] + 1) * 8
            next_header = buf[pos]
            pos += size
            continue
        if next_header == IPV6_EXT_FRAGMENT:
            if pos + 8 > end:
                return walk
            offset_flags = _uint(buf, pos + 2, 2, end)
            walk.frag_off = offset_flags & 0xFFF8
            walk.frag_mf = bool(offset_flags & 1)
            walk.frag_id = _uint(buf, pos + 4, 4, end)
            next_header = buf[pos]
            pos += 8
            walk.frag_data = pos
            if walk.frag_off:
                break  # the rest of the chain and the upper header are in the first fragment only
            continue
        break
    else:
        return walk  # too many extension headers: give up rather than guess
    walk.proto = next_header
    walk.upper = pos
    return walk


class PacketDecoder:
    """Decodes single frames into column values; holds the TCP 6783 stream tracker across frames."""

    def __init__(self, settings: Settings, control: ControlTracker) -> None:
        self.settings = settings
        self.control = control
        self.weave_port = settings.weave_port
        self.fastdp_port = settings.fastdp_port
        self.vxlan_ports = frozenset(settings.vxlan_ports) | {settings.fastdp_port}
        self.geneve_ports = frozenset(settings.geneve_ports)

    def decode(self, buf: bytes, linktype: int, row: Row) -> bytes | None:
        """Put the column values of one frame (only those present) into row; a fragment's IP payload back."""
        l3, ethertype = self._link(buf, linktype, row)
        if l3 < 0:
            return None
        if ethertype == ETH_IPV4:
            return self._ipv4(buf, l3, len(buf), row)
        if ethertype == ETH_IPV6:
            return self._ipv6(buf, l3, len(buf), row)
        return None

    # --- link layer -------------------------------------------------------------------------------

    def _link(self, buf: bytes, linktype: int, row: Row) -> tuple[int, int]:
        cap = len(buf)
        if linktype == LT_ETHERNET:
            if cap < ETH_HDR:
                return -1, -1
            row["eth_dst"] = _uint(buf, 0, 6, cap)
            row["eth_src"] = _uint(buf, 6, 6, cap)
            ethertype = _uint(buf, 12, 2, cap)
            pos = ETH_HDR
            tags = 0
            while ethertype in VLAN_TPIDS and tags < MAX_VLAN_TAGS_SLOW:
                if pos + 4 > cap:
                    return -1, -1
                if tags == 0:
                    row["vlan"] = _uint(buf, pos, 2, cap) & 0xFFF
                ethertype = _uint(buf, pos + 2, 2, cap)
                pos += 4
                tags += 1
            row["ethertype"] = ethertype
            row["l3_off"] = pos
            return pos, ethertype
        if linktype == LT_SLL:
            if cap < 16:
                return -1, -1
            row["pkt_dir"] = clip_int8(_uint(buf, 0, 2, cap))
            if _uint(buf, 4, 2, cap) == 6:
                row["eth_src"] = _uint(buf, 6, 6, cap)
            ethertype = _uint(buf, 14, 2, cap)
            row["ethertype"] = ethertype
            row["l3_off"] = 16
            return 16, ethertype
        if linktype == LT_SLL2:
            if cap < 20:
                return -1, -1
            ethertype = _uint(buf, 0, 2, cap)
            row["pkt_dir"] = clip_int8(buf[10])
            if buf[11] == 6:
                row["eth_src"] = _uint(buf, 12, 6, cap)
            row["ethertype"] = ethertype
            row["l3_off"] = 20
            return 20, ethertype
        if linktype in RAW_LINKTYPES:
            if cap < 1:
                return -1, -1
            if linktype == LT_IPV4:
                ethertype = ETH_IPV4
            elif linktype == LT_IPV6:
                ethertype = ETH_IPV6
            else:
                version = buf[0] >> 4
                ethertype = ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else -1
            row["l3_off"] = 0  # no ethertype on the wire: the column stays -1, as Wireshark shows it
            return 0, ethertype
        if linktype in (LT_NULL, LT_LOOP):
            if cap < 4:
                return -1, -1
            family = int.from_bytes(buf[0:4], "big")
            if linktype == LT_NULL:
                # written in the capturing host's byte order: a small value one way round is the right one
                little = int.from_bytes(buf[0:4], "little")
                family = little if little <= 0xFFFF else family
            ethertype = ETH_IPV4 if family in AF_IPV4 else ETH_IPV6 if family in AF_IPV6 else -1
            row["l3_off"] = 4  # an address family, not an ethertype: the column stays -1
            return 4, ethertype
        return -1, -1

    # --- IP ---------------------------------------------------------------------------------------

    def _ipv4(self, buf: bytes, l3: int, cap: int, row: Row) -> bytes | None:
        if l3 >= cap or buf[l3] >> 4 != 4:
            return None
        ihl = (buf[l3] & 0x0F) * 4
        row["ip_version"] = 4
        row["ip_hdr_len"] = ihl
        if l3 + 20 <= cap:  # the usual case: the whole fixed header in one unpack
            _, _, ip_len, ip_id, flags, ttl, proto, _, src, dst = IPV4_HEADER.unpack_from(buf, l3)
            row["ip_src"], row["ip_dst"] = ipv4_text(src), ipv4_text(dst)
        else:
            ip_len, ip_id, flags = (
                _uint(buf, l3 + 2, 2, cap),
                _uint(buf, l3 + 4, 2, cap),
                _uint(buf, l3 + 6, 2, cap),
            )
            ttl, proto = _uint(buf, l3 + 8, 1, cap), _uint(buf, l3 + 9, 1, cap)
            if l3 + 16 <= cap:
                row["ip_src"] = ipv4_text(buf[l3 + 12 : l3 + 16])
        _put(row, "ip_len", ip_len)
        _put(row, "ip_id", ip_id)
        _put(row, "ip_ttl", ttl)
        _put(row, "ip_proto", proto)
        frag_off = -1
        more = False
        if flags >= 0:
            frag_off = (flags & 0x1FFF) * 8
            more = bool(flags & 0x2000)
            row["ip_df"] = bool(flags & 0x4000)
            row["ip_mf"] = more
            row["ip_frag_off"] = frag_off
        header_ok = ihl >= 20 and l3 + ihl <= cap
        pend = min(cap, l3 + ip_len) if ihl >= 20 and ip_len >= ihl else cap
        fragment: bytes | None = None
        if flags >= 0 and (more or frag_off > 0):
            fragment = buf[l3 + ihl : pend] if ihl >= 20 else b""
        if header_ok and frag_off == 0 and proto >= 0:
            ip_payload = ip_len - ihl if ip_len >= 0 else -1
            src, dst = str(row.get("ip_src", "")), str(row.get("ip_dst", ""))
            self._l4(
                buf,
                l3 + ihl,
                proto,
                4,
                pend,
                ip_payload,
                row,
                depth=0,
                flow=(src, dst),
                whole=fragment is None,
            )
        return fragment

    def _ipv6(self, buf: bytes, l3: int, cap: int, row: Row) -> bytes | None:
        if l3 >= cap or buf[l3] >> 4 != 6:
            return None
        row["ip_version"] = 6
        payload_len = _uint(buf, l3 + 4, 2, cap)
        if payload_len >= 0:
            row["ip_len"] = payload_len + 40
        next_header = _uint(buf, l3 + 6, 1, cap)
        hop_limit = _uint(buf, l3 + 7, 1, cap)
        if hop_limit >= 0:
            row["ip_ttl"] = hop_limit
        if l3 + 24 <= cap:
            row["ip_src"] = ipv6_text(buf[l3 + 8 : l3 + 24])
        if l3 + 40 <= cap:
            row["ip_dst"] = ipv6_text(buf[l3 + 24 : l3 + 40])
        if next_header < 0 or l3 + 40 > cap:
            return None
        pend = min(cap, l3 + 40 + payload_len) if payload_len > 0 else cap
        walk = walk_ipv6(buf, next_header, l3 + 40, pend)
        fragment: bytes | None = None
        if walk.frag_data >= 0:
            row["ip_id"] = walk.frag_id
            row["ip_mf"] = walk.frag_mf
            if walk.frag_mf or walk.frag_off > 0:
                fragment = buf[walk.frag_data : pend]
        if walk.proto < 0:
            return fragment
        row["ip_frag_off"] = walk.frag_off
        row["ip_proto"] = walk.proto
        row["ip_hdr_len"] = walk.upper - l3
        if walk.frag_off == 0:
            ip_payload = payload_len + 40 - (walk.upper - l3) if payload_len >= 0 else -1
            src, dst = str(row.get("ip_src", "")), str(row.get("ip_dst", ""))
            self._l4(
                buf,
                walk.upper,
                walk.proto,
                6,
                pend,
                ip_payload,
                row,
                depth=0,
                flow=(src, dst),
                whole=fragment is None,
            )
        return fragment

    # --- transport --------------------------------------------------------------------------------

    def _l4(
        self,
        buf: bytes,
        l4: int,
        proto: int,
        ip_version: int,
        pend: int,
        ip_payload: int,
        row: Row,
        *,
        depth: int,
        flow: tuple[str, str],
        whole: bool,
    ) -> None:
        """Transport header at l4 (pend = end of the IP datagram within the captured bytes)."""
        # each header field is read when its own bytes are there (a first fragment may cut a TCP header)
        if proto == IPPROTO_UDP:
            sport, dport = _uint(buf, l4, 2, pend), _uint(buf, l4 + 2, 2, pend)
            udp_len = _uint(buf, l4 + 4, 2, pend)
            _put(row, "sport", sport)
            _put(row, "dport", dport)
            _put(row, "udp_len", udp_len)
            _put(row, "udp_csum", _uint(buf, l4 + 6, 2, pend))
            if udp_len >= 8:
                row["l4_payload_len"] = udp_len - 8
            if depth == 0 and l4 + 8 <= pend:
                self._udp_payload(buf, l4 + 8, pend, sport, dport, udp_len, row)
            return
        if proto == IPPROTO_TCP:
            sport, dport = _uint(buf, l4, 2, pend), _uint(buf, l4 + 2, 2, pend)
            seq = _uint(buf, l4 + 4, 4, pend)
            _put(row, "sport", sport)
            _put(row, "dport", dport)
            _put(row, "tcp_seq", seq)
            _put(row, "tcp_ack", _uint(buf, l4 + 8, 4, pend))
            _put(row, "tcp_flags", _uint(buf, l4 + 13, 1, pend))
            if l4 + 13 > pend:
                return
            data_off = (buf[l4 + 12] >> 4) * 4
            payload_len = ip_payload - data_off
            if data_off < 20 or ip_payload < 0 or payload_len < 0:
                payload_len = -1
            row["l4_payload_len"] = payload_len
            weave = self.weave_port in (sport, dport)
            if depth == 0 and whole and weave and payload_len > 0 and l4 + 20 <= pend:
                key = (flow[0], sport, flow[1], dport)
                payload = buf[l4 + data_off : min(pend, l4 + data_off + payload_len)]
                self.control.segment(key, seq, payload, payload_len, row)
            return
        if (proto == IPPROTO_ICMP and ip_version == 4) or (proto == IPPROTO_ICMPV6 and ip_version == 6):
            icmp_type, code = _uint(buf, l4, 1, pend), _uint(buf, l4 + 1, 1, pend)
            _put(row, "icmp_type", icmp_type)
            _put(row, "icmp_code", code)
            if ip_version == 4:
                if icmp_type == ICMP4_UNREACH and code == ICMP4_NEEDFRAG:
                    _put(row, "icmp_mtu", _uint(buf, l4 + 6, 2, pend))
                if icmp_type in ICMP4_ERROR_TYPES:
                    self._quote(buf, l4 + 8, pend, row)
            else:
                if icmp_type == ICMP6_PACKET_TOO_BIG:
                    mtu = _uint(buf, l4 + 4, 4, pend)
                    if mtu >= 0:
                        row["icmp_mtu"] = clip_int32(mtu)
                if icmp_type in ICMP6_ERROR_TYPES:
                    self._quote(buf, l4 + 8, pend, row)
            return
        if proto in TUNNEL_PROTOS and depth == 0:
            self._ip_in_ip(buf, l4, proto, pend, row)

    def _ip_in_ip(self, buf: bytes, pos: int, proto: int, pend: int, row: Row) -> None:
        """IPv4/IPv6 inside IP (4/41): inner addresses to inner_ip_*, the inner transport to the L4 columns."""
        if pos >= pend:
            return
        version = buf[pos] >> 4
        if proto == IPPROTO_IPIP and version == 4:
            ihl = (buf[pos] & 0x0F) * 4
            inner_proto = _uint(buf, pos + 9, 1, pend)
            if inner_proto >= 0:
                row["inner_ip_proto"] = inner_proto
            if pos + 16 <= pend:
                row["inner_ip_src"] = ipv4_text(buf[pos + 12 : pos + 16])
            if pos + 20 <= pend:
                row["inner_ip_dst"] = ipv4_text(buf[pos + 16 : pos + 20])
            ip_len = _uint(buf, pos + 2, 2, pend)
            flags = _uint(buf, pos + 6, 2, pend)
            if ihl < 20 or pos + ihl > pend or flags < 0 or flags & 0x1FFF or inner_proto < 0:
                return
            inner_end = min(pend, pos + ip_len) if ip_len >= ihl else pend
            payload = ip_len - ihl if ip_len >= 0 else -1
            self._l4(
                buf, pos + ihl, inner_proto, 4, inner_end, payload, row, depth=1, flow=("", ""), whole=False
            )
        elif proto == IPPROTO_IPV6 and version == 6:
            if pos + 24 <= pend:
                row["inner_ip_src"] = ipv6_text(buf[pos + 8 : pos + 24])
            if pos + 40 > pend:
                return
            row["inner_ip_dst"] = ipv6_text(buf[pos + 24 : pos + 40])
            payload_len = _uint(buf, pos + 4, 2, pend)
            inner_end = min(pend, pos + 40 + payload_len) if payload_len > 0 else pend
            walk = walk_ipv6(buf, buf[pos + 6], pos + 40, inner_end)
            if walk.proto < 0:
                return
            row["inner_ip_proto"] = walk.proto
            if walk.frag_off:
                return
            payload = payload_len + 40 - (walk.upper - pos)
            self._l4(
                buf, walk.upper, walk.proto, 6, inner_end, payload, row, depth=1, flow=("", ""), whole=False
            )

    # --- what UDP carries -------------------------------------------------------------------------

    def _udp_payload(
        self, buf: bytes, p: int, pend: int, sport: int, dport: int, udp_len: int, row: Row
    ) -> None:
        if dport in self.vxlan_ports:
            if p + VXLAN_HDR > pend:
                return
            row["tun_type"] = TUN_VXLAN
            row["vxlan_flags"] = buf[p]
            row["vxlan_vni"] = _uint(buf, p + 4, 3, pend)
            row["inner_len"] = udp_len - 16 if udp_len >= 16 else -1
            self._inner_ethernet(buf, p + VXLAN_HDR, pend, row, weave=dport == self.fastdp_port)
        elif dport in self.geneve_ports:
            if p + GENEVE_HDR > pend:
                return
            options = (buf[p] & 0x3F) * 4
            protocol = _uint(buf, p + 2, 2, pend)
            row["tun_type"] = TUN_GENEVE
            row["vxlan_vni"] = _uint(buf, p + 4, 3, pend)
            inner_len = udp_len - 16 - options
            row["inner_len"] = inner_len if inner_len >= 0 else -1
            inner = p + GENEVE_HDR + options
            if protocol == ETH_TEB:
                self._inner_ethernet(buf, inner, pend, row, weave=False)
            else:
                row["inner_ethertype"] = (
                    protocol  # Geneve can carry IP directly: its protocol is an ethertype
                )
                self._inner_ip(buf, inner, protocol, pend, row)
        elif self.weave_port in (sport, dport):
            self._sleeve(buf, p, pend, udp_len, row)

    def _inner_ethernet(self, buf: bytes, q: int, pend: int, row: Row, *, weave: bool) -> None:
        if q + 6 <= pend:
            row["inner_eth_dst"] = _uint(buf, q, 6, pend)
        if q + 12 <= pend:
            row["inner_eth_src"] = _uint(buf, q + 6, 6, pend)
        if q + ETH_HDR > pend:
            return
        ethertype = _uint(buf, q + 12, 2, pend)
        row["inner_ethertype"] = ethertype
        if buf[q : q + ETH_HDR] == ZERO_ETH:
            row["inner_zero_eth"] = True
            if weave:
                # fastdp heartbeat: 8-byte connection UID, then the frame's own 2-byte length
                if q + 22 <= pend:
                    row["weave_conn_uid"] = _uint(buf, q + 14, 8, pend)
                if q + 24 <= pend:
                    row["weave_hb_len"] = _uint(buf, q + 22, 2, pend)
            return
        self._inner_ip(buf, q + ETH_HDR, ethertype, pend, row)

    def _inner_ip(self, buf: bytes, i: int, ethertype: int, pend: int, row: Row) -> None:
        if i >= pend:
            return
        if ethertype == ETH_IPV4 and buf[i] >> 4 == 4:
            proto = _uint(buf, i + 9, 1, pend)
            if proto >= 0:
                row["inner_ip_proto"] = proto
            if i + 16 <= pend:
                row["inner_ip_src"] = ipv4_text(buf[i + 12 : i + 16])
            if i + 20 <= pend:
                row["inner_ip_dst"] = ipv4_text(buf[i + 16 : i + 20])
        elif ethertype == ETH_IPV6 and buf[i] >> 4 == 6:
            if i + 24 <= pend:
                row["inner_ip_src"] = ipv6_text(buf[i + 8 : i + 24])
            if i + 40 <= pend:
                row["inner_ip_dst"] = ipv6_text(buf[i + 24 : i + 40])
                walk = walk_ipv6(buf, buf[i + 6], i + 40, pend)
                if walk.proto >= 0:
                    row["inner_ip_proto"] = walk.proto

    def _sleeve(self, buf: bytes, p: int, pend: int, udp_len: int, row: Row) -> None:
        if p + 6 <= pend:
            row["sleeve_sender"] = _uint(buf, p, 6, pend)
        if p + 14 <= pend:
            row["sleeve_counter"] = _uint(buf, p + 6, 8, pend) & COUNTER_MASK
        if p + 12 <= pend:
            row["sleeve_src_peer"] = _uint(buf, p + 6, 6, pend)
        if p + 18 <= pend:
            row["sleeve_dst_peer"] = _uint(buf, p + 12, 6, pend)
        frame_len = _uint(buf, p + 18, 2, pend)
        if frame_len >= 0:
            row["sleeve_frame_len"] = frame_len
        if p + 34 <= pend and buf[p + 20 : p + 34] == ZERO_ETH:
            row["sleeve_zero_frame"] = True
        payload_len = udp_len - 8
        if frame_len < 0 or payload_len < SLEEVE_NAME + SLEEVE_FRAME_HDR:
            return
        # the chain must consume the datagram exactly (weave treats trailing bytes as a decode error)
        pos = SLEEVE_NAME
        count = 0
        while pos < payload_len and count < MAX_SLEEVE_FRAMES:
            if pos + SLEEVE_FRAME_HDR > payload_len:
                return
            length = _uint(buf, p + pos + 12, 2, pend)
            if length < 0:
                return
            pos += SLEEVE_FRAME_HDR + length
            count += 1
        if pos == payload_len:
            row["sleeve_frames"] = count

    # --- ICMP quotes ------------------------------------------------------------------------------

    def _quote(self, buf: bytes, q: int, pend: int, row: Row) -> None:
        """The datagram quoted by an ICMP error: its IP header, ports, and VXLAN header when quoted."""
        if q >= pend:
            return
        version = buf[q] >> 4
        l4 = -1
        proto = -1
        if version == 4:
            row["q_ip_version"] = 4
            ihl = (buf[q] & 0x0F) * 4
            ip_len = _uint(buf, q + 2, 2, pend)
            if ip_len >= 0:
                row["q_ip_len"] = ip_len
            ip_id = _uint(buf, q + 4, 2, pend)
            if ip_id >= 0:
                row["q_ip_id"] = ip_id
            flags = _uint(buf, q + 6, 2, pend)
            if flags >= 0:
                row["q_ip_df"] = bool(flags & 0x4000)
            proto = _uint(buf, q + 9, 1, pend)
            if proto >= 0:
                row["q_ip_proto"] = proto
            if q + 16 <= pend:
                row["q_ip_src"] = ipv4_text(buf[q + 12 : q + 16])
            if q + 20 <= pend:
                row["q_ip_dst"] = ipv4_text(buf[q + 16 : q + 20])
            if ihl >= 20 and flags >= 0 and not flags & 0x1FFF:
                l4 = q + ihl
        elif version == 6:
            row["q_ip_version"] = 6
            payload_len = _uint(buf, q + 4, 2, pend)
            if payload_len >= 0:
                row["q_ip_len"] = payload_len + 40
            if q + 24 <= pend:
                row["q_ip_src"] = ipv6_text(buf[q + 8 : q + 24])
            if q + 40 > pend:
                return
            row["q_ip_dst"] = ipv6_text(buf[q + 24 : q + 40])
            walk = walk_ipv6(buf, buf[q + 6], q + 40, pend)
            if walk.frag_data >= 0:
                row["q_ip_id"] = walk.frag_id
            if walk.proto < 0:
                return
            proto = walk.proto
            row["q_ip_proto"] = proto
            if walk.frag_off == 0:
                l4 = walk.upper
        else:
            return
        if l4 < 0 or proto not in (IPPROTO_UDP, IPPROTO_TCP) or l4 + 4 > pend:
            return
        dport = _uint(buf, l4 + 2, 2, pend)
        row["q_sport"] = _uint(buf, l4, 2, pend)
        row["q_dport"] = dport
        if proto != IPPROTO_UDP or dport not in self.vxlan_ports or l4 + 8 + VXLAN_HDR > pend:
            return
        row["q_vxlan_vni"] = _uint(buf, l4 + 12, 3, pend)
        inner = l4 + 8 + VXLAN_HDR
        if inner + ETH_HDR <= pend and buf[inner : inner + ETH_HDR] == ZERO_ETH:
            row["q_inner_zero_eth"] = True
