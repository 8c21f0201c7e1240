"""The per-frame packet table: every column, its dtype, its missing value and its meaning, declared once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    """One column of the packet table."""

    name: str
    dtype: str  # numpy dtype name, or "str" for text columns (pandas categorical/str in the DataFrame)
    missing: object  # the value that means "absent in this frame"
    meaning: str


# Integer columns use -1 (or 0 for MAC/ID-like unsigned values) for "absent" so the hot path
# stays in plain numpy arrays; text columns use "" for "absent".
PACKET_COLUMNS: tuple[Column, ...] = (
    # --- record / link layer ---
    Column("frame", "int64", -1, "1-based frame number within its capture, exactly as Wireshark counts"),
    Column("ts_ns", "int64", -1, "capture timestamp, ns since the Unix epoch (capture clock, not aligned)"),
    Column("caplen", "int32", -1, "captured bytes of the frame"),
    Column("wirelen", "int32", -1, "original length of the frame on the wire"),
    Column("linktype", "int16", -1, "LINKTYPE_* of the frame's interface (1 Ethernet, 113 SLL, 276 SLL2, 101 raw, 0 null)"),
    Column("iface", "int16", 0, "pcapng interface id (0 for classic pcap)"),
    Column("pkt_dir", "int8", -1, "SLL packet type: 0 to us, 1 broadcast, 2 multicast, 3 to other host, 4 sent by us; -1 unknown"),
    Column("eth_src", "uint64", 0, "source MAC as a 48-bit integer (0 if no Ethernet/SLL address)"),
    Column("eth_dst", "uint64", 0, "destination MAC as a 48-bit integer (0 if none)"),
    Column("vlan", "int32", -1, "outermost 802.1Q/802.1ad VLAN id, -1 if untagged"),
    Column("ethertype", "int32", -1, "ethertype after VLAN tags (or SLL protocol), -1 if none"),
    Column("l3_off", "int32", -1, "byte offset of the network header inside the frame, -1 if none"),
    # --- IP (outer) ---
    Column("ip_version", "int8", 0, "4 or 6; 0 when the frame carries no IP"),
    Column("ip_src", "str", "", "source address, text form"),
    Column("ip_dst", "str", "", "destination address, text form"),
    Column("ip_hdr_len", "int16", -1, "IPv4 header length incl. options / IPv6 40 + extension headers"),
    Column("ip_len", "int32", -1, "IPv4 total length / IPv6 payload length + 40"),
    Column("ip_id", "int64", -1, "IPv4 identification, or IPv6 fragment-header identification; -1 if none"),
    Column("ip_df", "bool", False, "IPv4 don't-fragment flag"),
    Column("ip_mf", "bool", False, "more-fragments flag (IPv4 or IPv6 fragment header)"),
    Column("ip_frag_off", "int32", -1, "fragment offset in bytes (0 for a first fragment or unfragmented), -1 if no IP"),
    Column("ip_ttl", "int16", -1, "IPv4 TTL / IPv6 hop limit"),
    Column("ip_proto", "int16", -1, "upper-layer protocol (after IPv6 extension headers), -1 if none"),
    # --- transport ---
    Column("sport", "int32", -1, "UDP/TCP source port, -1 if none (e.g. non-first fragment)"),
    Column("dport", "int32", -1, "UDP/TCP destination port, -1 if none"),
    Column("udp_len", "int32", -1, "UDP length field"),
    Column("udp_csum", "int32", -1, "UDP checksum field (0 = not computed)"),
    Column("tcp_flags", "int16", -1, "TCP flags byte (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10)"),
    Column("tcp_seq", "int64", -1, "TCP sequence number"),
    Column("tcp_ack", "int64", -1, "TCP acknowledgement number"),
    Column("l4_payload_len", "int32", -1, "L4 payload length by the headers (not limited by caplen)"),
    # --- ICMP / ICMPv6 ---
    Column("icmp_type", "int16", -1, "ICMP or ICMPv6 type"),
    Column("icmp_code", "int16", -1, "ICMP or ICMPv6 code"),
    Column("icmp_mtu", "int32", -1, "next-hop MTU of ICMP 3/4, MTU of ICMPv6 packet-too-big"),
    # --- the packet quoted inside an ICMP error ---
    Column("q_ip_version", "int8", 0, "IP version of the quoted packet, 0 if no quote"),
    Column("q_ip_src", "str", "", "quoted packet's source address"),
    Column("q_ip_dst", "str", "", "quoted packet's destination address"),
    Column("q_ip_len", "int32", -1, "quoted packet's IP total length (what was too big)"),
    Column("q_ip_id", "int64", -1, "quoted packet's IP identification"),
    Column("q_ip_df", "bool", False, "quoted packet's DF flag"),
    Column("q_ip_proto", "int16", -1, "quoted packet's protocol"),
    Column("q_sport", "int32", -1, "quoted UDP/TCP source port"),
    Column("q_dport", "int32", -1, "quoted UDP/TCP destination port"),
    Column("q_vxlan_vni", "int64", -1, "VNI of a quoted VXLAN packet, if the quote reaches it"),
    Column("q_inner_zero_eth", "bool", False, "the quoted VXLAN inner frame starts with an all-zero Ethernet header (a Weave heartbeat)"),
    # --- tunnels: VXLAN / Geneve ---
    Column("tun_type", "int8", 0, "0 none, 1 VXLAN, 2 Geneve, 3 IP-in-IP (protocol 4 or 41), 4 WireGuard"),
    Column("vxlan_flags", "int16", -1, "VXLAN flags byte (0x08 = VNI valid)"),
    Column("vxlan_vni", "int64", -1, "VXLAN / Geneve VNI"),
    Column("inner_len", "int32", -1, "length of the encapsulated Ethernet frame by the headers (UDP length - 8 - tunnel header)"),
    Column("inner_eth_src", "uint64", 0, "inner source MAC"),
    Column("inner_eth_dst", "uint64", 0, "inner destination MAC"),
    Column("inner_ethertype", "int32", -1, "inner ethertype"),
    Column("inner_zero_eth", "bool", False, "inner Ethernet header is all zero (both MACs and type): a Weave special frame"),
    Column("inner_ip_src", "str", "", "inner IPv4/IPv6 source"),
    Column("inner_ip_dst", "str", "", "inner IPv4/IPv6 destination"),
    Column("inner_ip_proto", "int16", -1, "inner IP protocol"),
    Column("inner_ip_len", "int32", -1, "inner IPv4 total length / IPv6 payload length + 40"),
    Column("inner_ip_df", "bool", False, "inner IPv4 don't-fragment flag"),
    Column("inner_sport", "int32", -1, "inner UDP/TCP source port (through VXLAN/Geneve or IP-in-IP)"),
    Column("inner_dport", "int32", -1, "inner UDP/TCP destination port"),
    Column("inner_tcp_flags", "int16", -1, "inner TCP flags byte"),
    Column("inner_tcp_seq", "int64", -1, "inner TCP sequence number"),
    Column("inner_l4_payload_len", "int32", -1, "inner TCP/UDP payload length by the headers"),
    Column("tun_opt_len", "int16", -1, "Geneve options length in bytes (tunnel header beyond its fixed 8)"),
    Column("wg_type", "int8", -1, "WireGuard message type 1-4 (initiation, response, cookie, data) on a WireGuard port"),
    Column("esp_spi", "int64", -1, "ESP security parameter index"),
    # --- Weave payload fields ---
    Column("weave_conn_uid", "uint64", 0, "connection UID carried in a fastdp or sleeve heartbeat (0 if none)"),
    Column("weave_hb_len", "int32", -1, "fastdp heartbeat's own 2-byte inner-frame length field"),
    Column("sleeve_sender", "uint64", 0, "sleeve: 6-byte name of the sending peer (0 if not a sleeve payload)"),
    Column("sleeve_src_peer", "uint64", 0, "sleeve: first frame's capturing (source) peer name"),
    Column("sleeve_dst_peer", "uint64", 0, "sleeve: first frame's destination peer name"),
    Column("sleeve_frames", "int16", -1, "sleeve: number of frames when the chain consumes the payload exactly, -1 if it does not parse"),
    Column("sleeve_frame_len", "int32", -1, "sleeve: length of the first inner frame"),
    Column("sleeve_zero_frame", "bool", False, "sleeve: first inner frame has an all-zero Ethernet header (special frame)"),
    Column("sleeve_counter", "int64", -1, "sleeve: bytes 6..13 as BE integer without bit 63 (encrypted-sleeve counter candidate)"),
    Column("ctl_msg", "str", "", "TCP 6783 message kind seen at the start of this segment: handshake, features, heartbeat, gossip, overlay_ctl, data, encrypted"),
    Column("ctl_proto_min", "int16", -1, "handshake: min protocol version"),
    Column("ctl_proto_max", "int16", -1, "handshake: max protocol version"),
    Column("ctl_encrypted", "int8", -1, "handshake encryption flag byte (0 plain, 1 encrypted), -1 if not seen in this segment"),
    Column("ctl_overlay_index", "int16", -1, "overlay control: forwarder index"),
    Column("ctl_overlay_subtag", "int16", -1, "overlay control: sub-tag (sleeve 1 hb-ack, 2 frag-ack, 3 pmtu-verified; fastdp 0 hb-ack)"),
    Column("ctl_pmtu", "int32", -1, "overlay control: MTU in a sleeve 'PMTU verified' message"),
    Column("ctl_peer_name", "str", "", "features map: Name (peer name)"),
    Column("ctl_nickname", "str", "", "features map: NickName (host name; untrusted text)"),
    Column("ctl_short_id", "int32", -1, "features map: ShortID"),
    # --- where decoding stopped (named bad bytes, like etherparse's stop_err or Zeek's weirds) ---
    Column("stop_layer", "int8", 0, "layer at which decoding stopped early: an index into schema.STOP_LAYERS (0 = nothing stopped it)"),
    Column("stop_reason", "int8", 0, "why it stopped there: an index into schema.STOP_REASONS (0 = it did not stop early)"),
    # --- reassembly (set on every fragment of a train once the train is resolved) ---
    Column("frag_train", "int64", -1, "id of the fragment train this fragment belongs to (first frame number of the train)"),
    Column("reasm_len", "int32", -1, "IP length of the reassembled datagram, -1 if not (yet) reassembled"),
    Column("reasm_status", "str", "", "complete, incomplete, overlap, conflict, timeout or evicted"),
    # --- classification ---
    Column("klass", "str", "", "traffic class (see weavepcap.classes)"),
    Column("overlay_mtu", "int32", -1, "overlay MTU implied: fastdp heartbeat inner length - 14; sleeve PMTU verification outer IP length"),
    Column("peer_src_short", "int32", -1, "fastdp: source peer short id (VNI & 0xfff)"),
    Column("peer_dst_short", "int32", -1, "fastdp: destination peer short id (VNI >> 12)"),
    Column("uncertain", "bool", False, "the class rests on a feature the wire-format notes call uncertain"),
)

# Where and why decoding of a frame stopped before the end of what it could have read. "Not decoded further"
# (an ethertype or protocol weavepcap does not dissect) is not a stop: only bytes that are missing or wrong are.
STOP_LAYERS: tuple[str, ...] = ("", "link", "vlan", "ip", "ipv6_ext", "transport", "icmp_quote", "tunnel", "inner",
                                "weave")
STOP_REASONS: tuple[str, ...] = (
    "",
    "snaplen",  # the capture cut the frame inside this header (caplen < what the header needs)
    "truncated",  # the packet's own lengths end inside this header (e.g. IP total length < header length)
    "malformed",  # a field that cannot be (IPv4 IHL < 5, version mismatch, UDP length < 8, bad option length)
    "too_deep",  # more VLAN tags / extension headers / nested tunnels than the decoder walks
)

COLUMN_BY_NAME: dict[str, Column] = {c.name: c for c in PACKET_COLUMNS}
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in PACKET_COLUMNS)
TEXT_COLUMNS: tuple[str, ...] = tuple(c.name for c in PACKET_COLUMNS if c.dtype == "str")


def empty_columns(n: int) -> dict[str, np.ndarray]:
    """Arrays of length n for every column, filled with each column's missing value."""
    out: dict[str, np.ndarray] = {}
    for c in PACKET_COLUMNS:
        if c.dtype == "str":
            out[c.name] = np.empty(n, dtype=object)
            out[c.name].fill("")  # ~5x faster than np.full for object arrays
        else:
            out[c.name] = np.full(n, c.missing, dtype=c.dtype)
    return out
