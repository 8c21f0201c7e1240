"""Traffic classes per frame from the packet-table columns: Weave's port, size and marker table, vectorised, in one place."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from weavepcap.classes import CLASS_CODE, CLASS_NAMES, QUOTE_KINDS
from weavepcap.defrag import fragment_mask
from weavepcap.settings import Settings
from weavepcap.wire import (
    ETH_ARP,
    ETH_HDR,
    FRAGTEST_IP_LENS,
    FRAGTEST_UDP_LENS,
    IPPROTO_ESP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    PLAUSIBLE_SLEEVE_COUNTER,
    PMTU_DISCOVERY_MIN_IP_LEN,
    SLEEVE_HEARTBEAT_FRAME_LEN,
    SLEEVE_HEARTBEAT_IP_LEN_ENCRYPTED,
    TUN_GENEVE,
    TUN_VXLAN,
    TUNNEL_PROTOS,
    VXLAN_FLAGS_VNI_VALID,
)

CLASS_NAME_ARRAY = np.array(CLASS_NAMES, dtype=object)


def weave_endpoints(columns: Mapping[str, np.ndarray], settings: Settings) -> set[str]:
    """Addresses that exchange TCP/UDP weave_port or VXLAN to fastdp_port traffic in these rows."""
    proto, sport, dport = columns["ip_proto"], columns["sport"], columns["dport"]
    wp = settings.weave_port
    on_weave_port = ((proto == IPPROTO_TCP) | (proto == IPPROTO_UDP)) & ((sport == wp) | (dport == wp))
    mask = on_weave_port | _fastdp_vxlan(columns, settings)
    if not mask.any():
        return set()
    return set(pd.unique(columns["ip_src"][mask]).tolist()) | set(pd.unique(columns["ip_dst"][mask]).tolist())


def _fastdp_vxlan(columns: Mapping[str, np.ndarray], settings: Settings) -> np.ndarray:
    """UDP to fastdp_port that really is VXLAN: I flag only, a VNI, room for an inner Ethernet header.

    BFD and anything else on that port fails one of these and is not Weave.
    """
    return (
        (columns["ip_proto"] == IPPROTO_UDP)
        & (columns["dport"] == settings.fastdp_port)
        & (columns["tun_type"] == TUN_VXLAN)
        & (columns["vxlan_flags"] == VXLAN_FLAGS_VNI_VALID)
        & (columns["vxlan_vni"] >= 0)
        & (columns["inner_len"] >= ETH_HDR)
    )


def classify(
    columns: dict[str, np.ndarray],
    settings: Settings,
    *,
    weave_hosts: Collection[str] | None = None,
    train_sport: np.ndarray | None = None,
    train_dport: np.ndarray | None = None,
    train_udp_len: np.ndarray | None = None,
) -> np.ndarray:
    """Fill `klass`, `overlay_mtu`, `peer_src_short`, `peer_dst_short` and `uncertain` in place.

    Returns the classes as int8 codes (index into `CLASS_NAMES`), for callers that count them.

    `weave_hosts`: addresses known (from the whole capture so far) to speak Weave; ESP is Weave
    only between two of them. None means "these rows are all there is" (use `weave_endpoints`).
    `train_*`: the first fragment's ports / UDP length for every row's fragment train (-1 where
    unknown), so that non-first fragments can be attributed; fragments otherwise use their own.
    """
    n = columns["frame"].shape[0]
    wp, fp = settings.weave_port, settings.fastdp_port
    proto = columns["ip_proto"]
    sport, dport = columns["sport"], columns["dport"]
    # Routers never fragment IPv6, so every IPv6 packet behaves as if it had DF set.
    ip_len, df = columns["ip_len"], columns["ip_df"] | (columns["ip_version"] == 6)
    udp, tcp = proto == IPPROTO_UDP, proto == IPPROTO_TCP

    # --- fragments: attributed through their train, never by their own (partial) bytes ---
    fragment = fragment_mask(columns)
    t_sport = sport if train_sport is None else np.where(train_sport >= 0, train_sport, sport)
    t_dport = dport if train_dport is None else np.where(train_dport >= 0, train_dport, dport)
    t_udp_len = columns["udp_len"] if train_udp_len is None else np.where(train_udp_len >= 0, train_udp_len, columns["udp_len"])
    sleeve_train = udp & ((t_sport == wp) | (t_dport == wp))
    ports_unknown = (t_sport < 0) & (t_dport < 0)  # the train's first fragment was never seen
    fragtest_fragment = fragment & udp & (
        (np.isin(columns["reasm_len"], FRAGTEST_IP_LENS) & (sleeve_train | ports_unknown))
        | (sleeve_train & np.isin(t_udp_len, FRAGTEST_UDP_LENS))
    )

    whole = ~fragment
    # --- Weave control: TCP weave_port either side (TCP fastdp_port on loopback is the HTTP API, not Weave) ---
    control = whole & tcp & ((sport == wp) | (dport == wp))
    control_heartbeat = np.zeros(n, dtype=bool)
    control_rows = np.flatnonzero(control)  # compare text only where it can matter
    control_heartbeat[control_rows] = columns["ctl_msg"][control_rows] == "heartbeat"

    # --- sleeve: UDP weave_port (source 6783 on both peers; the destination may be NAT-rewritten) ---
    sleeve = whole & udp & ((sport == wp) | (dport == wp))
    parses = columns["sleeve_frames"] > 0
    zero_frame = columns["sleeve_zero_frame"] & parses
    frame_len = columns["sleeve_frame_len"]
    sleeve_fragtest_whole = sleeve & (np.isin(ip_len, FRAGTEST_IP_LENS) | np.isin(columns["udp_len"], FRAGTEST_UDP_LENS)) & ~df
    sleeve_discovery = sleeve & df & (ip_len >= PMTU_DISCOVERY_MIN_IP_LEN)
    sleeve_hb_clear = sleeve & zero_frame & (frame_len == SLEEVE_HEARTBEAT_FRAME_LEN)
    sleeve_hb_encrypted = sleeve & ~parses & df & (ip_len == SLEEVE_HEARTBEAT_IP_LEN_ENCRYPTED)
    sleeve_verify = sleeve & zero_frame & df & (frame_len != SLEEVE_HEARTBEAT_FRAME_LEN) & ~sleeve_discovery & ~sleeve_fragtest_whole
    sleeve_data = sleeve & parses
    sleeve_encrypted = sleeve & ~parses
    counter = columns["sleeve_counter"]
    implausible = (counter < 0) | (counter >= PLAUSIBLE_SLEEVE_COUNTER) | (columns["caplen"] < columns["wirelen"])

    # --- fast datapath: VXLAN to fastdp_port ---
    fastdp = whole & _fastdp_vxlan(columns, settings)
    fastdp_heartbeat = fastdp & columns["inner_zero_eth"]

    # --- encrypted fastdp: ESP, but only between peers that are seen speaking Weave ---
    esp = whole & (proto == IPPROTO_ESP)
    hosts = weave_endpoints(columns, settings) if weave_hosts is None else weave_hosts
    between_peers = np.zeros(n, dtype=bool)
    esp_rows = np.flatnonzero(esp)
    if esp_rows.size and hosts:
        host_list = list(hosts)  # text comparison only on the ESP rows: it is the slow kind
        between_peers[esp_rows] = (np.isin(columns["ip_src"][esp_rows], host_list)
                                   & np.isin(columns["ip_dst"][esp_rows], host_list))
    esp_weave = esp & between_peers
    esp_unknown = esp & ~between_peers

    # --- ICMP errors, other overlays, ARP ---
    # The decoder follows IP-in-IP / 6in4 one level (inner_ip_*, ICMP fields of the inner packet), as tshark does.
    carried = np.where(np.isin(proto, TUNNEL_PROTOS), columns["inner_ip_proto"], proto)
    frag_needed = whole & (carried == IPPROTO_ICMP) & (columns["icmp_type"] == 3) & (columns["icmp_code"] == 4)
    packet_too_big = whole & (carried == IPPROTO_ICMPV6) & (columns["icmp_type"] == 2)
    tun = columns["tun_type"]
    on_fastdp_port = udp & (dport == fp)
    vxlan_ports = list(settings.vxlan_ports)
    other_vxlan = whole & udp & (tun == TUN_VXLAN) & ~on_fastdp_port & (np.isin(dport, vxlan_ports) | np.isin(sport, vxlan_ports))
    geneve = whole & udp & (tun == TUN_GENEVE)
    arp = columns["ethertype"] == ETH_ARP

    # First match wins: the order is the precedence.
    table: list[tuple[np.ndarray, str]] = [
        (fragtest_fragment, "weave.sleeve.fragtest"),
        (fragment, "ip.fragment"),
        (frag_needed, "icmp.frag_needed"),
        (packet_too_big, "icmpv6.packet_too_big"),
        (control_heartbeat, "weave.control.heartbeat"),
        (control, "weave.control"),
        (sleeve_fragtest_whole, "weave.sleeve.fragtest"),
        (sleeve_discovery, "weave.sleeve.pmtu_discovery"),
        (sleeve_hb_clear | sleeve_hb_encrypted, "weave.sleeve.heartbeat"),
        (sleeve_verify, "weave.sleeve.pmtu_verify"),
        (sleeve_data, "weave.sleeve.data"),
        (sleeve_encrypted, "weave.sleeve.encrypted"),
        (fastdp_heartbeat, "weave.fastdp.heartbeat"),
        (fastdp, "weave.fastdp.data"),
        (esp_weave, "weave.fastdp.esp"),
        (other_vxlan, "overlay.vxlan"),
        (geneve, "overlay.geneve"),
        (arp, "arp"),
    ]
    # Integer codes (index into CLASS_NAMES) first: cheap to compare and to count; text only at the end.
    codes = np.select([mask for mask, _ in table], [CLASS_CODE[name] for _, name in table], default=CLASS_CODE["other"])
    codes = codes.astype(np.int8)
    columns["klass"] = CLASS_NAME_ARRAY[codes]

    def is_class(name: str) -> np.ndarray:
        return codes == CLASS_CODE[name]

    overlay_mtu = np.full(n, -1, dtype=np.int32)
    overlay_mtu = np.where(is_class("weave.fastdp.heartbeat"), columns["inner_len"] - ETH_HDR, overlay_mtu)
    # A verification frame is sized so the outer IP packet equals the path MTU under test.
    overlay_mtu = np.where(is_class("weave.sleeve.pmtu_verify"), ip_len, overlay_mtu)
    columns["overlay_mtu"] = overlay_mtu.astype(np.int32)

    vni = columns["vxlan_vni"]
    columns["peer_src_short"] = np.where(fastdp, vni & 0xFFF, -1).astype(np.int32)
    columns["peer_dst_short"] = np.where(fastdp, vni >> 12, -1).astype(np.int32)

    uncertain = (
        (is_class("weave.sleeve.heartbeat") & sleeve_hb_encrypted & ~sleeve_hb_clear)
        | (is_class("weave.sleeve.encrypted") & implausible)
        | (is_class("other") & esp_unknown)
    )
    columns["uncertain"] = uncertain
    return codes


def quoted_class(columns: Mapping[str, np.ndarray], settings: Settings) -> np.ndarray:
    """What the packet quoted inside an ICMP error was: a `classes.QUOTE_KINDS` name per row ("" where there is
    no quote). The only place that names a quote; classify's summary, the events and the rules use it."""
    n = columns["frame"].shape[0]
    wp, fp = settings.weave_port, settings.fastdp_port
    proto, sport, dport = columns["q_ip_proto"], columns["q_sport"], columns["q_dport"]
    quoted = columns["q_ip_version"] > 0
    udp, tcp = quoted & (proto == IPPROTO_UDP), quoted & (proto == IPPROTO_TCP)
    vxlan_ports = list(settings.vxlan_ports)
    masks = {
        "weave.fastdp.heartbeat": udp & (dport == fp) & columns["q_inner_zero_eth"],
        "weave.fastdp.data": udp & (dport == fp),
        "weave.sleeve": udp & ((sport == wp) | (dport == wp)),
        "weave.control": tcp & ((sport == wp) | (dport == wp)),
        "esp": quoted & (proto == IPPROTO_ESP),
        "overlay.vxlan": udp & np.isin(dport, vxlan_ports),
        "overlay.geneve": udp & np.isin(dport, list(settings.geneve_ports)),
        "other": quoted,
    }
    names = np.array([q.name for q in QUOTE_KINDS] + [""], dtype=object)
    choice = np.select([masks[q.name] for q in QUOTE_KINDS], np.arange(len(QUOTE_KINDS)), default=len(QUOTE_KINDS))
    return names[choice] if n else np.zeros(0, dtype=object)
