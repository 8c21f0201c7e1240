"""Every protocol number, header size, Weave size and overlay overhead weavepcap knows, in one place."""

from __future__ import annotations

from dataclasses import dataclass

# --- link types (LINKTYPE_* values as stored in pcap/pcapng) ----------------------------------------
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

# --- ethertypes ----------------------------------------------------------------------------------
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
ETH_TEB = 0x6558  # transparent Ethernet bridging: Geneve carrying an Ethernet frame
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, the pre-standard QinQ tag
MAX_VLAN_TAGS_SLOW = 8  # the per-packet path walks at most this many stacked tags

# BSD address families meaning IPv4 / IPv6 (IPv6 differs by OS: 24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS).
AF_IPV4 = (2,)
AF_IPV6 = (24, 28, 30)

# --- IP protocol numbers -------------------------------------------------------------------------
IPPROTO_ICMP = 1
IPPROTO_IPIP = 4  # IPv4 in IP (Calico IPIP)
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41  # IPv6 in IPv4 (6in4)
IPPROTO_ESP = 50
IPPROTO_ICMPV6 = 58
TUNNEL_PROTOS = (IPPROTO_IPIP, IPPROTO_IPV6)  # IP-in-IP the decoder looks through, one level

# IPv6 extension headers walked to find the upper-layer protocol (RFC 8200 + AH, mobility, HIP, shim6, experiments).
IPV6_EXT_GENERIC = (0, 43, 60, 135, 139, 140, 253, 254)  # (hdr ext len + 1) * 8 bytes
IPV6_EXT_FRAGMENT = 44
IPV6_EXT_AH = 51  # (payload len + 2) * 4 bytes
MAX_IPV6_EXT_HEADERS = 16

# --- ICMP ----------------------------------------------------------------------------------------
# ICMP types that quote the offending datagram (IPv4: RFC 792; IPv6: RFC 4443).
ICMP4_ERROR_TYPES = (3, 4, 5, 11, 12)
ICMP6_ERROR_TYPES = (1, 2, 3, 4)
ICMP4_UNREACH = 3
ICMP4_NEEDFRAG = 4  # code of type 3: fragmentation needed and DF set (next-hop MTU in bytes 6-7)
ICMP6_PACKET_TOO_BIG = 2

# --- header sizes ----------------------------------------------------------------------------------
ETH_HDR = 14
IPV4_HDR = 20  # without options
IPV6_HDR = 40
UDP_HDR = 8
VXLAN_HDR = 8
GENEVE_HDR = 8  # without options
IPV6_FRAGMENT_HDR = 8

# Tunnel codes of the `tun_type` column.
TUN_NONE = 0
TUN_VXLAN = 1
TUN_GENEVE = 2

VXLAN_FLAGS_VNI_VALID = 0x08  # RFC 7348 I flag; Weave's kernel VXLAN sets nothing else

# --- well-known ports (defaults of Settings; code reads the ports from Settings) -----------------
WEAVE_PORT = 6783  # TCP control + UDP sleeve; fastdp VXLAN is WEAVE_PORT + 1
VXLAN_IANA_PORT = 4789  # RFC 7348 (Calico, Cilium's option)
VXLAN_LINUX_PORT = 8472  # the Linux kernel's historical default (flannel, Cilium's default)
GENEVE_PORT = 6081  # RFC 8926 (Cilium, OVN-Kubernetes, Antrea)
WIREGUARD_PORT = 51820  # flannel, Calico and Cilium encryption

# --- Weave's sizes and markers (weave-wire-format.md §2-§5) ------------------------------------
SLEEVE_NAME = 6  # sending peer's name at the start of every sleeve payload
SLEEVE_FRAME_HDR = 14  # per frame: src peer (6) + dst peer (6) + frame length (2)
MAX_SLEEVE_FRAMES = 10_000  # bound on the chain walk (a 64 KiB payload holds at most ~4,700 empty frames)
SLEEVE_HEARTBEAT_FRAME_LEN = 22  # 14-byte zero Ethernet header + 8-byte connection UID
SLEEVE_HEARTBEAT_IP_LEN = 70  # unencrypted, DF
SLEEVE_HEARTBEAT_IP_LEN_ENCRYPTED = 94  # 70 + 8 counter + 16 Poly1305 tag: recognisable by size only
FRAGTEST_FRAME_LEN = 60001  # the sleeve fragmentation test's inner frame
FRAGTEST_IP_LENS = (60049, 60073)  # that frame reassembled: unencrypted / encrypted
FRAGTEST_UDP_LENS = (60029, 60053)  # the same datagram's UDP length, seen on the first fragment
PMTU_DISCOVERY_FRAME_LEN = 60000  # the DF probe meant to fail with EMSGSIZE
PMTU_DISCOVERY_MIN_IP_LEN = 60048  # 60000-byte DF probe (60072 encrypted); only fits loopback-class MTUs
# An encrypted sleeve packet carries a per-path counter that starts at 0 for every connection, so
# its low bits stay small; a "counter" above this is no support for the encrypted reading.
PLAUSIBLE_SLEEVE_COUNTER = 1 << 40
COUNTER_MASK = (1 << 63) - 1  # encrypted sleeve: bit 63 is the DF-path flag, the rest the counter
LINUX_MIN_PMTU = 552  # the floor of Weave's sleeve PMTU search

# TCP control stream (mesh protocol v2, weave-wire-format.md §2).
CONTROL_MAGIC = b"weave"  # then min and max protocol version
MAX_CONTROL_MESSAGE = 10 * 1024 * 1024  # mesh refuses bodies above 10 MiB, so a bigger length means we lost sync
PUBLIC_KEY_LEN = 32  # Curve25519 key after the encryption flag byte 01
SECRETBOX_MIN = 17  # 16-byte Poly1305 tag + at least the tag byte
# gob type definition of map[string]string (elem and key both string): stable part of the features message
GOB_MAP_STRING_STRING = b"\x01\x0c\x01\x0c\x00\x00"
TAG_HEARTBEAT = 0
TAGS_LEGACY_SLEEVE = (1, 2, 3)  # pre-1.2 peers: hb-ack, frag-ack, pmtu-verified (+2-byte MTU)
TAGS_GOSSIP = (4, 5, 6)
TAG_OVERLAY = 7
SUBTAG_PMTU_VERIFIED = 3
# Overlay-control sub-tags per forwarder: sleeve 1 heartbeat ack, 2 fragmentation test received, 3 PMTU
# verified (+2-byte MTU); fastdp 0 heartbeat ack, 1 IPsec init SA.
SLEEVE_SUBTAG_HB_ACK, SLEEVE_SUBTAG_FRAG_ACK = 1, 2
FASTDP_SUBTAG_HB_ACK, FASTDP_SUBTAG_IPSEC_INIT = 0, 1

# TCP flags
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# Inner IP packet -> outer IP packet (weave-wire-format.md §5).
FASTDP_OVERHEAD = IPV4_HDR + UDP_HDR + VXLAN_HDR + ETH_HDR  # 50: fastdp heartbeat IP = overlay MTU + 50
FASTDP_ESP_OVERHEAD = 84  # IP - overlay MTU for ESP-encrypted fastdp, before 0..3 bytes of padding
ESP_FIXED = 52  # ESP fastdp: IP = 52 + roundup4(overlay MTU + 32) (IP, SPI, seq, IV, ICV)
ESP_PADDED = 32  # ... + the VXLAN/UDP/inner Ethernet part that is padded to a multiple of 4
SLEEVE_OVERHEAD = IPV4_HDR + UDP_HDR + SLEEVE_NAME + SLEEVE_FRAME_HDR + ETH_HDR  # 62
SLEEVE_OVERHEAD_ENCRYPTED = SLEEVE_OVERHEAD + 8 + 16  # 86: + counter + Poly1305 tag
IPV6_EXTRA = IPV6_HDR - IPV4_HDR  # an IPv6 underlay costs 20 bytes more than IPv4


def fastdp_heartbeat_ip_len(overlay_mtu: int, *, encrypted: bool = False, ipv6: bool = False) -> int:
    """Outer IP length of a fastdp heartbeat for an overlay MTU (weave-wire-format.md §4.2)."""
    extra = IPV6_EXTRA if ipv6 else 0
    if encrypted:
        return ESP_FIXED + roundup4(overlay_mtu + ESP_PADDED) + extra
    return overlay_mtu + FASTDP_OVERHEAD + extra


def overlay_mtu_of_heartbeat(ip_len: int, *, encrypted: bool = False, ipv6: bool = False) -> int:
    """The overlay MTU a fastdp heartbeat (or ESP packet) of this outer IP length implies (ESP: the largest)."""
    extra = IPV6_EXTRA if ipv6 else 0
    return ip_len - (FASTDP_ESP_OVERHEAD if encrypted else FASTDP_OVERHEAD) - extra


def max_overlay_mtu(path_mtu: int, *, encrypted: bool = False, ipv6: bool = False) -> int:
    """Largest overlay MTU whose fastdp packets fit a path: path - 50; with ESP the largest x with
    52 + roundup4(x + 32) <= path."""
    extra = IPV6_EXTRA if ipv6 else 0
    if encrypted:
        return ((path_mtu - extra - ESP_FIXED) // 4) * 4 - ESP_PADDED
    return path_mtu - FASTDP_OVERHEAD - extra


def roundup4(n: int) -> int:
    return (n + 3) // 4 * 4


# --- overlay families (issue 11): what encapsulates, on which port, at what cost --------------------


@dataclass(frozen=True)
class OverlayFamily:
    """One encapsulation: its name, how it is recognised, and what it adds to the inner IP packet."""

    name: str  # vxlan | geneve | ipip | wireguard | esp
    transport: str  # "udp" (with default ports) or "ip" (an IP protocol number)
    ports: tuple[int, ...]  # default UDP ports; () for IP protocols
    ip_proto: int  # IP protocol of the outer packet (17 for UDP families)
    overhead_v4: int  # outer IPv4 length - inner IP length (fixed part)
    overhead_v6: int  # the same over an IPv6 underlay
    note: str  # how the overhead is made up; what varies


OVERLAY_FAMILIES: tuple[OverlayFamily, ...] = (
    OverlayFamily("vxlan", "udp", (VXLAN_IANA_PORT, VXLAN_LINUX_PORT), IPPROTO_UDP, 50, 70,
                  "outer IP 20/40 + UDP 8 + VXLAN 8 + inner Ethernet 14 (RFC 7348)"),
    OverlayFamily("geneve", "udp", (GENEVE_PORT,), IPPROTO_UDP, 50, 70,
                  "outer IP 20/40 + UDP 8 + Geneve 8 + options (4-byte multiples) + inner Ethernet 14 (RFC 8926)"),
    OverlayFamily("ipip", "ip", (), IPPROTO_IPIP, 20, 40, "one more IP header (Calico IPIP: IPv4 in IPv4)"),
    OverlayFamily("wireguard", "udp", (WIREGUARD_PORT,), IPPROTO_UDP, 60, 80,
                  "outer IP 20/40 + UDP 8 + WireGuard data header 16 + Poly1305 tag 16 (+ padding to 16)"),
    OverlayFamily("esp", "ip", (), IPPROTO_ESP, 52, 72,
                  "outer IP 20/40 + SPI 4 + sequence 4 + IV 8 + ICV 16 (AES-GCM) + 2-5 trailer and padding"),
)
OVERLAY_FAMILY: dict[str, OverlayFamily] = {f.name: f for f in OVERLAY_FAMILIES}

INT32_MAX = 0x7FFFFFFF


def clip_int8(value: int) -> int:
    """An unsigned header value as an int8 column entry: -1 when it does not fit."""
    return value if value <= 127 else -1


def clip_int32(value: int) -> int:
    """An unsigned 32-bit header value (e.g. ICMPv6 MTU) as an int32 column entry."""
    return value if value <= INT32_MAX else INT32_MAX
