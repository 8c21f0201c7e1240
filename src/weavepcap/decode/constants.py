"""Numbers both decode paths agree on: link types, ethertypes, header sets and ICMP error types."""

from __future__ import annotations

# Link types (LINKTYPE_* values as stored in pcap/pcapng).
LT_NULL = 0  # BSD loopback, 4-byte address family in the writer's byte order
LT_ETHERNET = 1
LT_RAW = 101  # raw IPv4 or IPv6, told apart by the version nibble
LT_RAW_DLT = 12  # DLT_RAW written as-is by some old writers: the same as LT_RAW
LT_LOOP = 108  # OpenBSD loopback: like NULL but always big-endian
LT_SLL = 113
LT_IPV4 = 228
LT_IPV6 = 229
LT_SLL2 = 276
RAW_LINKTYPES = (LT_RAW, LT_RAW_DLT, LT_IPV4, LT_IPV6)
NULL_LINKTYPES = (LT_NULL, LT_LOOP)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_TEB = 0x6558  # transparent Ethernet bridging: Geneve carrying an Ethernet frame
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, the pre-standard QinQ tag
MAX_VLAN_TAGS_SLOW = 8  # the per-packet path walks at most this many stacked tags

# BSD address families meaning IPv4 / IPv6 (IPv6 differs by OS: 24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS).
AF_IPV4 = (2,)
AF_IPV6 = (24, 28, 30)

IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ICMPV6 = 58
TUNNEL_PROTOS = (IPPROTO_IPIP, IPPROTO_IPV6)

# IPv6 extension headers walked to find the upper-layer protocol (RFC 8200 + AH, mobility, HIP, shim6, experiments).
IPV6_EXT_GENERIC = (0, 43, 60, 135, 139, 140, 253, 254)  # (hdr ext len + 1) * 8 bytes
IPV6_EXT_FRAGMENT = 44
IPV6_EXT_AH = 51  # (payload len + 2) * 4 bytes
MAX_IPV6_EXT_HEADERS = 16

# ICMP types that quote the offending datagram (IPv4: RFC 792; IPv6: RFC 4443).
ICMP4_ERROR_TYPES = (3, 4, 5, 11, 12)
ICMP6_ERROR_TYPES = (1, 2, 3, 4)
ICMP4_UNREACH = 3
ICMP4_NEEDFRAG = 4
ICMP6_PACKET_TOO_BIG = 2

TUN_NONE = 0
TUN_VXLAN = 1
TUN_GENEVE = 2

VXLAN_HDR = 8
GENEVE_HDR = 8
ETH_HDR = 14
SLEEVE_NAME = 6
SLEEVE_FRAME_HDR = 14  # src peer (6) + dst peer (6) + frame length (2)
MAX_SLEEVE_FRAMES = 10_000  # bound on the chain walk (a 64 KiB payload holds at most ~4,700 empty frames)

INT32_MAX = 0x7FFFFFFF
COUNTER_MASK = (1 << 63) - 1  # encrypted sleeve: bit 63 is the DF-path flag, the rest the counter


def clip_int8(value: int) -> int:
    """An unsigned header value as an int8 column entry: -1 when it does not fit."""
    return value if value <= 127 else -1


def clip_int32(value: int) -> int:
    """An unsigned 32-bit header value (e.g. ICMPv6 MTU) as an int32 column entry."""
    return value if value <= INT32_MAX else INT32_MAX
