"""Classifier on hand-made packet-table rows: every class, and the near misses that must not be Weave."""

from __future__ import annotations

import numpy as np
import pytest

from weavepcap import schema
from weavepcap.classes import CLASS_NAMES
from weavepcap.classify import classify, weave_endpoints
from weavepcap.settings import Settings

S = Settings()
A, B = "10.0.0.1", "10.0.0.2"


def table(*rows: dict[str, object]) -> dict[str, np.ndarray]:
    """Columns for the given rows (unspecified fields at their missing values)."""
    cols = schema.empty_columns(len(rows))
    for i, row in enumerate(rows):
        cols["frame"][i] = i + 1
        for name, value in row.items():
            cols[name][i] = value
    return cols


def ipv4(proto: int, **kw: object) -> dict[str, object]:
    base: dict[str, object] = dict(ip_version=4, ip_src=A, ip_dst=B, ip_proto=proto, ip_hdr_len=20,
                                   ip_frag_off=0, ip_id=1, ethertype=0x0800, caplen=100, wirelen=100)
    base.update(kw)
    return base


def udp(sport: int, dport: int, **kw: object) -> dict[str, object]:
    return ipv4(17, sport=sport, dport=dport, **kw)


def vxlan(dport: int, *, sport: int = 40000, flags: int = 0x08, vni: int = (12 << 12) | 34, zero: bool = False,
          inner_len: int = 1424, **kw: object) -> dict[str, object]:
    return udp(sport, dport, tun_type=1, vxlan_flags=flags, vxlan_vni=vni, inner_len=inner_len, inner_zero_eth=zero,
               ip_df=True, ip_len=inner_len + 36, **kw)


def sleeve(**kw: object) -> dict[str, object]:
    return udp(6783, 6783, **kw)


def one(row: dict[str, object], settings: Settings = S, **kw: object) -> dict[str, np.ndarray]:
    cols = table(row)
    classify(cols, settings, **kw)  # type: ignore[arg-type]
    assert cols["klass"][0] in CLASS_NAMES
    return cols


CASES: list[tuple[str, dict[str, object], str]] = [
    ("tcp control", ipv4(6, sport=45000, dport=6783, ctl_msg="handshake"), "weave.control"),
    ("tcp control reply", ipv4(6, sport=6783, dport=45000), "weave.control"),
    ("tcp heartbeat", ipv4(6, sport=6783, dport=45000, ctl_msg="heartbeat"), "weave.control.heartbeat"),
    ("sleeve heartbeat", sleeve(ip_df=True, ip_len=70, sleeve_frames=1, sleeve_zero_frame=True, sleeve_frame_len=22),
     "weave.sleeve.heartbeat"),
    ("sleeve heartbeat encrypted", sleeve(ip_df=True, ip_len=94, sleeve_frames=-1), "weave.sleeve.heartbeat"),
    ("sleeve pmtu verify", sleeve(ip_df=True, ip_len=1500, sleeve_frames=1, sleeve_zero_frame=True, sleeve_frame_len=1452),
     "weave.sleeve.pmtu_verify"),
    ("sleeve pmtu discovery", sleeve(ip_df=True, ip_len=60048, sleeve_frames=1, sleeve_zero_frame=True,
                                     sleeve_frame_len=60000), "weave.sleeve.pmtu_discovery"),
    ("sleeve fragtest on loopback", sleeve(ip_len=60049, udp_len=60029, sleeve_frames=1, sleeve_zero_frame=True,
                                           sleeve_frame_len=60001), "weave.sleeve.fragtest"),
    ("sleeve data", sleeve(ip_df=True, ip_len=200, sleeve_frames=2, sleeve_frame_len=98), "weave.sleeve.data"),
    ("sleeve encrypted", sleeve(ip_len=300, sleeve_frames=-1, sleeve_counter=5), "weave.sleeve.encrypted"),
    ("fastdp heartbeat", vxlan(6784, zero=True), "weave.fastdp.heartbeat"),
    ("fastdp data", vxlan(6784), "weave.fastdp.data"),
    ("icmp frag needed", ipv4(1, icmp_type=3, icmp_code=4, icmp_mtu=1454), "icmp.frag_needed"),
    ("icmp port unreachable", ipv4(1, icmp_type=3, icmp_code=3), "other"),
    ("icmpv6 ptb", dict(ip_version=6, ip_src="fe80::1", ip_dst="fe80::2", ip_proto=58, icmp_type=2, icmp_mtu=1280),
     "icmpv6.packet_too_big"),
    ("icmpv6 ptb inside 6in4", ipv4(41, inner_ip_proto=58, icmp_type=2, icmp_mtu=1460), "icmpv6.packet_too_big"),
    ("icmpv6 echo inside 6in4", ipv4(41, inner_ip_proto=58, icmp_type=128), "other"),
    ("icmp type 3/4 but udp", ipv4(17, icmp_type=3, icmp_code=4), "other"),
    ("vxlan 4789", vxlan(4789), "overlay.vxlan"),
    ("vxlan 8472", vxlan(8472), "overlay.vxlan"),
    ("vxlan 8472 zero inner is not weave", vxlan(8472, zero=True), "overlay.vxlan"),
    ("geneve", udp(50000, 6081, tun_type=2, vxlan_vni=10), "overlay.geneve"),
    ("arp", dict(ethertype=0x0806), "arp"),
    ("dns", udp(53000, 53), "other"),
    # must-not: BFD and broken VXLAN on the fastdp port, TCP 6784 (the local HTTP API)
    ("bfd on 6784", udp(49152, 6784, ip_len=52), "other"),
    ("6784 bad flags", vxlan(6784, flags=0x0C), "other"),
    ("6784 too short for an inner frame", vxlan(6784, inner_len=8), "other"),
    ("6784 not vxlan per decoder", udp(40000, 6784, tun_type=0, vxlan_flags=0x08), "other"),
    ("tcp 6784 loopback api", ipv4(6, ip_src="127.0.0.1", ip_dst="127.0.0.1", sport=51000, dport=6784), "other"),
    ("udp 6784 source only", vxlan(40000, sport=6784), "other"),
]


@pytest.mark.parametrize(("name", "row", "expected"), CASES, ids=[c[0] for c in CASES])
def test_class_of_one_row(name: str, row: dict[str, object], expected: str) -> None:
    assert one(row)["klass"][0] == expected


def test_every_class_is_reachable() -> None:
    reached = {expected for _, _, expected in CASES} | {"weave.fastdp.esp", "ip.fragment"}
    # The overlay families of issue 11 have rows in the class table before the classifier names them.
    not_yet = {"overlay.ipip", "overlay.wireguard", "overlay.esp"}
    assert reached == set(CLASS_NAMES) - not_yet


def test_fastdp_heartbeat_overlay_mtu_and_short_ids() -> None:
    cols = one(vxlan(6784, zero=True, inner_len=1424, vni=(0x123 << 12) | 0x456))
    assert cols["overlay_mtu"][0] == 1410
    assert cols["peer_src_short"][0] == 0x456
    assert cols["peer_dst_short"][0] == 0x123
    assert not cols["uncertain"][0]


def test_non_weave_vxlan_has_no_peer_ids() -> None:
    cols = one(vxlan(4789))
    assert cols["peer_src_short"][0] == -1 and cols["overlay_mtu"][0] == -1


def test_pmtu_verify_overlay_mtu_is_outer_ip_length() -> None:
    cols = one(sleeve(ip_df=True, ip_len=1454, sleeve_frames=1, sleeve_zero_frame=True, sleeve_frame_len=1406))
    assert cols["overlay_mtu"][0] == 1454


def test_pmtu_verify_needs_df() -> None:
    # Zero frames without DF and not a fragtest size are not a verification probe.
    cols = one(sleeve(ip_df=False, ip_len=1454, sleeve_frames=1, sleeve_zero_frame=True, sleeve_frame_len=1406))
    assert cols["klass"][0] == "weave.sleeve.data"


def test_ipv6_sleeve_probes_count_as_df() -> None:
    row = sleeve(ip_version=6, ip_src="fd00::1", ip_dst="fd00::2", ip_len=1280, sleeve_frames=1, sleeve_zero_frame=True,
                 sleeve_frame_len=1212)
    assert one(row)["klass"][0] == "weave.sleeve.pmtu_verify"


def test_uncertain_flags() -> None:
    assert one(sleeve(ip_df=True, ip_len=94, sleeve_frames=-1))["uncertain"][0]
    assert not one(sleeve(ip_df=True, ip_len=70, sleeve_frames=1, sleeve_zero_frame=True, sleeve_frame_len=22))["uncertain"][0]
    assert not one(sleeve(ip_len=300, sleeve_frames=-1, sleeve_counter=5))["uncertain"][0]
    assert one(sleeve(ip_len=300, sleeve_frames=-1, sleeve_counter=1 << 60))["uncertain"][0]
    # A clear sleeve datagram cut by the snap length cannot be told from an encrypted one.
    assert one(sleeve(ip_len=300, sleeve_frames=-1, sleeve_counter=0, caplen=68, wirelen=314))["uncertain"][0]


def test_esp_only_between_weave_peers() -> None:
    esp = ipv4(50, ip_df=True, ip_len=1460)
    control = ipv4(6, sport=45000, dport=6783)
    cols = table(control, esp)
    classify(cols, S)
    assert cols["klass"].tolist() == ["weave.control", "weave.fastdp.esp"]
    assert not cols["uncertain"][1]

    lone = table(esp)
    classify(lone, S)
    assert lone["klass"][0] == "other" and lone["uncertain"][0]

    # Hosts known from earlier chunks count too; a third address does not.
    cols = table(esp, ipv4(50, ip_src="10.0.0.9"))
    classify(cols, S, weave_hosts={A, B})
    assert cols["klass"].tolist() == ["weave.fastdp.esp", "other"]


def test_weave_endpoints() -> None:
    cols = table(ipv4(6, sport=45000, dport=6783), udp(1, 53, ip_src="10.9.9.9"), vxlan(6784, ip_src="10.0.0.3"))
    assert weave_endpoints(cols, S) == {A, B, "10.0.0.3"}


def test_fragments_are_attributed_by_their_train() -> None:
    first = sleeve(ip_mf=True, ip_frag_off=0, ip_len=1500, udp_len=60029, reasm_len=60049)
    middle = udp(-1, -1, ip_mf=True, ip_frag_off=1480, ip_len=1500, reasm_len=60049)
    plain_first = udp(5000, 5001, ip_mf=True, ip_frag_off=0, ip_len=1500, udp_len=3000, reasm_len=3020)
    plain_last = udp(-1, -1, ip_mf=False, ip_frag_off=1480, ip_len=1540, reasm_len=3020)
    cols = table(first, middle, plain_first, plain_last)
    classify(cols, S)
    assert cols["klass"].tolist() == ["weave.sleeve.fragtest", "weave.sleeve.fragtest", "ip.fragment", "ip.fragment"]


def test_fragtest_recognised_from_first_fragment_ports_when_train_incomplete() -> None:
    middle = udp(-1, -1, ip_mf=True, ip_frag_off=1480, ip_len=1500)
    cols = table(middle)
    classify(cols, S, train_sport=np.array([6783]), train_dport=np.array([6783]), train_udp_len=np.array([60053]))
    assert cols["klass"][0] == "weave.sleeve.fragtest"
    cols = table(middle)
    classify(cols, S, train_sport=np.array([6783]), train_dport=np.array([6783]), train_udp_len=np.array([1500]))
    assert cols["klass"][0] == "ip.fragment"


def test_ipv6_fragment() -> None:
    row = dict(ip_version=6, ip_src="2001:db8::1", ip_dst="2001:db8::2", ip_proto=17, ip_id=7, ip_mf=True, ip_frag_off=0)
    assert one(row)["klass"][0] == "ip.fragment"
    # An atomic fragment (fragment header, offset 0, M clear) is a whole datagram.
    atomic = dict(row, ip_mf=False, sport=53000, dport=53)
    assert one(atomic)["klass"][0] == "other"


def test_custom_ports() -> None:
    settings = Settings(weave_port=7000, vxlan_ports=frozenset({4789, 9999}))
    assert one(vxlan(7001, zero=True), settings)["klass"][0] == "weave.fastdp.heartbeat"
    assert one(vxlan(6784, zero=True), settings)["klass"][0] == "other"
    assert one(vxlan(9999), settings)["klass"][0] == "overlay.vxlan"
    assert one(vxlan(8472), settings)["klass"][0] == "other"
    assert one(ipv4(6, sport=7000, dport=40000), settings)["klass"][0] == "weave.control"


def test_empty_table() -> None:
    cols = schema.empty_columns(0)
    classify(cols, S)
    assert cols["klass"].shape == (0,)
