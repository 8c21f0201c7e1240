"""The traffic-class table: one row per class (meaning, Wireshark filter, retention, role); every subset is a query on it."""

from __future__ import annotations

from dataclasses import dataclass

from weavepcap.settings import Settings

# What a class is about (a row's `group`): which layer of the overlay it belongs to.
GROUPS = ("control", "sleeve", "fastdp", "icmp", "fragment", "overlay", "arp", "other")


@dataclass(frozen=True)
class TrafficClass:
    """One traffic class. Names are a contract (JSON, rules and reports use them)."""

    name: str
    meaning: str
    group: str  # one of GROUPS
    filter: str = ""  # Wireshark display filter; {weave_port} / {fastdp_port} come from Settings
    bulk: bool = False  # bulk data: counted in aggregates, thinned when analyze keeps rows of big inputs
    heartbeat: bool = False  # a liveness probe that the receiver acknowledges
    probe: bool = False  # a path-MTU / fragmentation probe
    family: str = ""  # overlay family (wire.OVERLAY_FAMILIES) for overlay classes
    uncertain_reason: str = ""  # why a frame of this class may carry `uncertain` (a caveat line)

    @property
    def weave(self) -> bool:
        return self.name.startswith("weave.")

    def wireshark_filter(self, settings: Settings) -> str:
        return self.filter.format(weave_port=settings.weave_port, fastdp_port=settings.fastdp_port)


_SLEEVE = "udp.port == {weave_port}"
_ESP_WITHOUT_WEAVE = ("IP protocol 50 (ESP) between hosts that show no other Weave traffic in this capture: "
                      "possibly encrypted fast datapath, not counted as Weave")
_FASTDP = "udp.dstport == {fastdp_port}"

# Order is the display order (and the int8 class codes of the hot path: index in this tuple).
CLASS_TABLE: tuple[TrafficClass, ...] = (
    TrafficClass("weave.control", "TCP 6783 mesh control stream (handshake `weave` + version, gossip, overlay control)",
                 "control", "tcp.port == {weave_port}"),
    TrafficClass("weave.control.heartbeat", "TCP 6783 heartbeat message (body 00, or 17-byte encrypted body)",
                 "control", "tcp.port == {weave_port}"),
    TrafficClass("weave.sleeve.heartbeat", "UDP 6783 sleeve heartbeat: zero Ethernet header + 8-byte connection UID, DF",
                 "sleeve", _SLEEVE, heartbeat=True,
                 uncertain_reason="encrypted sleeve heartbeats are recognised by their 94-byte DF size only"),
    TrafficClass("weave.sleeve.fragtest",
                 "UDP 6783 60001-byte fragmentation test (fragments of a 60049-byte datagram, DF clear)",
                 "sleeve", _SLEEVE, probe=True),
    TrafficClass("weave.sleeve.pmtu_verify", "UDP 6783 zero-filled DF PMTU verification frame sized to the PMTU under test",
                 "sleeve", _SLEEVE, probe=True),
    TrafficClass("weave.sleeve.pmtu_discovery", "UDP 6783 60000-byte DF PMTU discovery probe (only on loopback-class MTUs)",
                 "sleeve", _SLEEVE, probe=True),
    TrafficClass("weave.sleeve.data", "UDP 6783 sleeve datagram whose frame chain parses exactly (container frames)",
                 "sleeve", _SLEEVE, bulk=True),
    TrafficClass("weave.sleeve.encrypted", "UDP 6783 datagram that is not a clear chain: NaCl-encrypted sleeve",
                 "sleeve", _SLEEVE, bulk=True,
                 uncertain_reason="these UDP weave-port datagrams do not parse as a clear frame chain and show no "
                 "plausible encrypted-sleeve counter (or were cut by the snap length): encryption is inferred, not seen"),
    TrafficClass("weave.fastdp.heartbeat",
                 "UDP 6784 VXLAN with an all-zero inner Ethernet header: fastdp heartbeat (inner = 14 + overlay MTU)",
                 "fastdp", _FASTDP, heartbeat=True, family="vxlan"),
    TrafficClass("weave.fastdp.data", "UDP 6784 VXLAN carrying a container frame; VNI = dst short id << 12 | src short id",
                 "fastdp", _FASTDP, bulk=True, family="vxlan"),
    TrafficClass("weave.fastdp.esp", "IP protocol 50 between Weave peers: encrypted fast datapath",
                 "fastdp", "esp", bulk=True, family="esp"),
    TrafficClass("icmp.frag_needed", "ICMP type 3 code 4 (fragmentation needed), with next-hop MTU and the quoted packet",
                 "icmp", "icmp.type == 3 && icmp.code == 4"),
    TrafficClass("icmpv6.packet_too_big", "ICMPv6 type 2 (packet too big), with MTU and the quoted packet",
                 "icmp", "icmpv6.type == 2"),
    TrafficClass("ip.fragment", "IPv4/IPv6 fragment not attributed to a Weave class",
                 "fragment", "(ip.flags.mf == 1 || ip.frag_offset > 0)"),
    TrafficClass("overlay.vxlan", "VXLAN that is not Weave's (4789, 8472, or configured ports)",
                 "overlay", bulk=True, family="vxlan"),
    TrafficClass("overlay.geneve", "Geneve (UDP 6081)", "overlay", bulk=True, family="geneve"),
    TrafficClass("overlay.ipip", "IPv4 in IPv4 (IP protocol 4) between hosts: Calico IPIP", "overlay", "ip.proto == 4",
                 bulk=True, family="ipip"),
    TrafficClass("overlay.wireguard", "WireGuard (UDP 51820 or configured ports, message types 1-4)",
                 "overlay", "wg", bulk=True, family="wireguard"),
    TrafficClass("overlay.esp", "IP protocol 50 (ESP) between hosts that show no Weave traffic", "overlay", "esp",
                 bulk=True, family="esp",
                 uncertain_reason=_ESP_WITHOUT_WEAVE),
    TrafficClass("arp", "ARP", "arp"),
    TrafficClass("other", "anything else", "other", bulk=True,
                 uncertain_reason=_ESP_WITHOUT_WEAVE),
)

CLASS_BY_NAME: dict[str, TrafficClass] = {c.name: c for c in CLASS_TABLE}
CLASSES: dict[str, str] = {c.name: c.meaning for c in CLASS_TABLE}  # name -> one-line meaning
CLASS_NAMES: tuple[str, ...] = tuple(CLASS_BY_NAME)
CLASS_CODE: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
# Room for class codes in integer keys (class code = key % CODE_SPACE): above every class code and the
# hot path's provisional codes, which count on from len(CLASS_NAMES).
CODE_SPACE = 32
assert len(CLASS_NAMES) + 4 <= CODE_SPACE


def names_where(**match: object) -> tuple[str, ...]:
    """Class names whose rows have every given attribute value, e.g. names_where(group="sleeve")."""
    return tuple(c.name for c in CLASS_TABLE if all(getattr(c, k) == v for k, v in match.items()))


WEAVE_CLASSES: tuple[str, ...] = tuple(c.name for c in CLASS_TABLE if c.weave)
BULK_CLASSES: tuple[str, ...] = names_where(bulk=True)
HEARTBEAT_CLASSES: tuple[str, ...] = names_where(heartbeat=True)
PROBE_CLASSES: tuple[str, ...] = names_where(probe=True)
ICMP_CLASSES: tuple[str, ...] = names_where(group="icmp")
CONTROL_CLASSES: tuple[str, ...] = names_where(group="control")
OVERLAY_CLASSES: tuple[str, ...] = names_where(group="overlay")  # other CNIs' encapsulations
FRAGMENT_CLASSES: tuple[str, ...] = ("weave.sleeve.fragtest", "ip.fragment")  # classes a fragment can get
SLEEVE_DATA_CLASSES: tuple[str, ...] = ("weave.sleeve.data", "weave.sleeve.encrypted")
UNCERTAIN_REASONS: dict[str, str] = {c.name: c.uncertain_reason for c in CLASS_TABLE if c.uncertain_reason}


def class_filter(name: str, settings: Settings) -> str:
    """The Wireshark display filter fragment of a class ("" when no filter narrows it down)."""
    row = CLASS_BY_NAME.get(name)
    return row.wireshark_filter(settings) if row else ""


# --- what an ICMP error quotes (one vocabulary for classify's summary, the events and the rules) -------


@dataclass(frozen=True)
class QuoteKind:
    """What the packet inside an ICMP error was."""

    name: str  # a contract: classify JSON `quoted.class`, event attrs `quoted`
    label: str  # how messages name it
    fastdp: bool = False  # Weave fast datapath (plain VXLAN or its ESP form)


QUOTE_KINDS: tuple[QuoteKind, ...] = (
    QuoteKind("weave.fastdp.heartbeat", "fastdp heartbeat", fastdp=True),
    QuoteKind("weave.fastdp.data", "fastdp packet", fastdp=True),
    QuoteKind("weave.sleeve", "sleeve packet"),
    QuoteKind("weave.control", "Weave control segment"),
    QuoteKind("esp", "ESP packet"),
    QuoteKind("overlay.vxlan", "VXLAN packet"),
    QuoteKind("overlay.geneve", "Geneve packet"),
    QuoteKind("other", "packet"),
)
QUOTE_KIND: dict[str, QuoteKind] = {q.name: q for q in QUOTE_KINDS}
