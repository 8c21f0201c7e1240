"""Hand-built frames for every shape the decoder knows: the values it reads, and fast == slow on each."""

from __future__ import annotations

import numpy as np
import pytest
from support.build import (
    MAC_A,
    MAC_B,
    control_message,
    ethernet,
    fastdp_heartbeat_frame,
    features_body,
    frag_needed,
    geneve,
    icmp,
    ipv4,
    ipv6,
    ipv6_ext,
    ipv6_fragment,
    mac_int,
    null_loopback,
    packet_too_big,
    sleeve,
    sleeve_heartbeat_frame,
    sll,
    sll2,
    tcp,
    udp,
    vxlan,
)

from tests.test_decode_equivalence import assert_same_columns
from weavepcap.decode import DecodeState, core, decode_chunk
from weavepcap.io.records import chunk_from_frames
from weavepcap.schema import COLUMN_BY_NAME
from weavepcap.settings import Settings

SETTINGS = Settings()
UID = 0x1122334455667788


def decode_one(frame: bytes, linktype: int = 1) -> dict[str, object]:
    """Non-missing columns of one frame, after checking that both paths agree on it."""
    chunk = chunk_from_frames([frame], linktype=linktype)
    assert_same_columns(chunk)
    columns = decode_chunk(chunk, SETTINGS, DecodeState()).columns
    return {
        k: v[0].item() if hasattr(v[0], "item") else v[0]
        for k, v in columns.items()
        if v[0] != COLUMN_BY_NAME[k].missing
    }


def fastdp_heartbeat(overlay_mtu: int = 1376) -> bytes:
    inner = fastdp_heartbeat_frame(UID, overlay_mtu)
    return ethernet(
        ipv4(
            udp(vxlan(inner, (0x123 << 12) | 0x456), sport=51000, dport=6784),
            src="192.168.1.10",
            dst="192.168.1.20",
        )
    )


def test_ethernet_ipv4_udp() -> None:
    row = decode_one(ethernet(ipv4(udp(b"hello", sport=1234, dport=53, csum=0xBEEF), ident=77, ttl=9)))
    assert row["eth_src"] == mac_int(MAC_A) and row["eth_dst"] == mac_int(MAC_B)
    assert (row["ethertype"], row["l3_off"], row["ip_version"], row["ip_hdr_len"]) == (0x0800, 14, 4, 20)
    assert (row["ip_src"], row["ip_dst"], row["ip_id"], row["ip_ttl"], row["ip_proto"]) == (
        "10.0.0.1",
        "10.0.0.2",
        77,
        9,
        17,
    )
    assert row["ip_df"] is True and row["ip_frag_off"] == 0 and row["ip_len"] == 33
    assert (row["sport"], row["dport"], row["udp_len"], row["udp_csum"], row["l4_payload_len"]) == (
        1234,
        53,
        13,
        0xBEEF,
        5,
    )
    assert "vlan" not in row and "tun_type" not in row


@pytest.mark.parametrize(
    ("tags", "vlan", "l3"),
    [
        (((0x8100, 100),), 100, 18),
        (((0x88A8, 5), (0x8100, 7)), 5, 22),
        (((0x9100, 0x2ABC), (0x8100, 7)), 0xABC, 22),
    ],
)
def test_vlan_tags(tags: tuple[tuple[int, int], ...], vlan: int, l3: int) -> None:
    row = decode_one(ethernet(ipv4(udp(b"x")), tags=tags))
    assert (row["vlan"], row["l3_off"], row["ethertype"], row["ip_src"]) == (vlan, l3, 0x0800, "10.0.0.1")


def test_three_vlan_tags_take_the_per_packet_path() -> None:
    frame = ethernet(ipv4(udp(b"x", dport=9)), tags=((0x88A8, 1), (0x8100, 2), (0x8100, 3)))
    for engine, slow in (("numpy", 1), *((("core", 0),) if core.available() else ())):
        decoded = decode_chunk(chunk_from_frames([frame]), SETTINGS, DecodeState(), engine=engine)
        assert decoded.slow_frames == slow, engine  # the compiled core walks the tags itself
        assert (
            decoded.columns["vlan"][0] == 1
            and decoded.columns["l3_off"][0] == 26
            and decoded.columns["dport"][0] == 9
        ), engine


def test_sll_and_sll2() -> None:
    row = decode_one(sll(ipv4(tcp(sport=1, dport=2, flags=0x02), proto=6), pkt_type=4), linktype=113)
    assert (row["pkt_dir"], row["eth_src"], row["l3_off"], row["tcp_flags"], row["l4_payload_len"]) == (
        4,
        mac_int(MAC_A),
        16,
        2,
        0,
    )
    row = decode_one(sll2(ipv4(udp(b"")), pkt_type=0), linktype=276)
    assert (row["pkt_dir"], row["l3_off"], row["ethertype"], row["dport"]) == (0, 20, 0x0800, 53)
    row = decode_one(sll(ipv4(udp(b"")), addr=b""), linktype=113)
    assert "eth_src" not in row and row["ethertype"] == 0x0800  # no link address (e.g. a tun device)


@pytest.mark.parametrize(
    ("frame", "linktype", "version"),
    [
        (ipv4(udp(b"")), 101, 4),
        (ipv6(udp(b"")), 101, 6),
        (ipv4(udp(b"")), 12, 4),
        (ipv4(udp(b"")), 228, 4),
        (ipv6(udp(b"")), 229, 6),
        (null_loopback(ipv4(udp(b"")), 2), 0, 4),
        (null_loopback(ipv4(udp(b"")), 2, big_endian=True), 0, 4),
        (null_loopback(ipv6(udp(b"")), 30), 0, 6),
        (null_loopback(ipv6(udp(b"")), 24, big_endian=True), 108, 6),
    ],
)
def test_raw_and_null_links(frame: bytes, linktype: int, version: int) -> None:
    row = decode_one(frame, linktype)
    assert (
        row["ip_version"] == version
        and row["dport"] == 53
        and row["l3_off"] == (4 if linktype in (0, 108) else 0)
    )


def test_ipv4_options_keep_ports() -> None:
    row = decode_one(
        ethernet(ipv4(udp(b"abc", sport=6783, dport=6783), options=b"\x94\x04\x00\x00"))
    )  # router alert
    assert row["ip_hdr_len"] == 24 and (row["sport"], row["dport"]) == (6783, 6783)


def test_ipv6_extension_headers() -> None:
    payload = ipv6_ext(60) + ipv6_ext(43, b"\0" * 14) + ipv6_ext(17) + udp(b"q", sport=5, dport=6)
    row = decode_one(ethernet(ipv6(payload, next_header=0, hop_limit=3), ethertype=0x86DD))
    assert (row["ip_version"], row["ip_proto"], row["ip_hdr_len"], row["ip_ttl"]) == (
        6,
        17,
        40 + 8 + 16 + 8,
        3,
    )
    assert (row["sport"], row["dport"], row["ip_src"], row["ip_dst"]) == (5, 6, "fd00::1", "fd00::2")
    assert row["ip_frag_off"] == 0 and row["ip_len"] == 40 + len(payload)


def test_ipv6_fragments() -> None:
    data = udp(b"z" * 40, sport=7, dport=8)
    first = ethernet(
        ipv6(ipv6_fragment(17, offset=0, more=True, ident=99) + data[:24], next_header=44), ethertype=0x86DD
    )
    rest = ethernet(
        ipv6(ipv6_fragment(17, offset=24, ident=99) + data[24:], next_header=44), ethertype=0x86DD
    )
    chunk = chunk_from_frames([first, rest])
    assert_same_columns(chunk)
    decoded = decode_chunk(chunk, SETTINGS, DecodeState())
    c = decoded.columns
    assert c["ip_id"].tolist() == [99, 99] and c["ip_mf"].tolist() == [True, False]
    assert c["ip_frag_off"].tolist() == [0, 24] and c["ip_proto"].tolist() == [17, 17]
    assert c["dport"].tolist() == [8, -1]  # a non-first fragment has no transport header
    assert decoded.fragment_payloads == {1: data[:24], 2: data[24:]}


def test_ipv4_fragments() -> None:
    data = udp(b"y" * 100, sport=6783, dport=6783)
    first = ethernet(ipv4(data[:64], ident=5, df=False, mf=True, total_length=20 + 64))
    last = ethernet(ipv4(data[64:], ident=5, df=False, frag_off=64))
    padded = (
        ethernet(ipv4(data[64:], ident=6, df=False, frag_off=64)) + b"\0" * 20
    )  # Ethernet padding is not payload
    decoded = decode_chunk(chunk_from_frames([first, last, padded]), SETTINGS, DecodeState())
    assert_same_columns(chunk_from_frames([first, last, padded]))
    c = decoded.columns
    assert c["ip_mf"].tolist() == [True, False, False] and c["ip_frag_off"].tolist() == [0, 64, 64]
    assert c["sport"].tolist() == [6783, -1, -1] and c["udp_len"].tolist() == [108, -1, -1]
    assert decoded.fragment_payloads == {1: data[:64], 2: data[64:], 3: data[64:]}
    assert decoded.slow_frames == 0  # IPv4 fragments without options are vectorised too


def test_frag_needed_quoting_a_fastdp_heartbeat() -> None:
    quoted = fastdp_heartbeat()[
        14 : 14 + 20 + 8 + 8 + 14 + 8
    ]  # IP + UDP + VXLAN + zero Ethernet header + part
    frame = ethernet(ipv4(frag_needed(quoted, 1454), src="192.168.1.1", dst="192.168.1.10", proto=1))
    row = decode_one(frame)
    assert (row["icmp_type"], row["icmp_code"], row["icmp_mtu"]) == (3, 4, 1454)
    assert (row["q_ip_version"], row["q_ip_src"], row["q_ip_dst"], row["q_ip_len"]) == (
        4,
        "192.168.1.10",
        "192.168.1.20",
        1426,
    )
    assert (row["q_ip_proto"], row["q_sport"], row["q_dport"], row["q_ip_df"]) == (17, 51000, 6784, True)
    assert row["q_vxlan_vni"] == (0x123 << 12) | 0x456 and row["q_inner_zero_eth"] is True
    assert "sport" not in row  # the quoted ports are not the frame's own


def test_frag_needed_with_a_short_quote() -> None:
    quoted = fastdp_heartbeat()[14 : 14 + 28]  # RFC 792 minimum: IP header + 8 bytes
    row = decode_one(ethernet(ipv4(frag_needed(quoted, 1400), proto=1)))
    assert row["q_dport"] == 6784 and "q_vxlan_vni" not in row and "q_inner_zero_eth" not in row


def test_icmpv6_packet_too_big() -> None:
    quoted = ipv6(udp(b"d" * 1400, sport=1, dport=2))[:200]
    row = decode_one(ethernet(ipv6(packet_too_big(quoted, 1280), next_header=58), ethertype=0x86DD))
    assert (row["icmp_type"], row["icmp_mtu"], row["q_ip_version"], row["q_ip_len"], row["q_dport"]) == (
        2,
        1280,
        6,
        1448,
        2,
    )


def test_6in4_packet_too_big_counts_from_the_inner_icmpv6() -> None:
    inner = ipv6(
        packet_too_big(ipv6(tcp(sport=443, dport=5000))[:60], 1460),
        next_header=58,
        src="2001:db8::1",
        dst="2001:db8::2",
    )
    row = decode_one(ethernet(ipv4(inner, proto=41, src="198.51.100.1", dst="203.0.113.9")))
    assert (row["ip_proto"], row["ip_src"]) == (41, "198.51.100.1")  # the outer header stays in ip_*
    assert (row["inner_ip_src"], row["inner_ip_proto"], row["icmp_type"], row["icmp_mtu"]) == (
        "2001:db8::1",
        58,
        2,
        1460,
    )
    assert row["q_sport"] == 443


def test_geneve_with_options() -> None:
    inner = ethernet(ipv4(icmp(8, 0), src="30.0.0.1", dst="30.0.0.2", proto=1))
    frame = ethernet(ipv4(udp(geneve(inner, 0xB, options=b"\x01" * 8), sport=999, dport=6081)))
    row = decode_one(frame)
    assert (row["tun_type"], row["vxlan_vni"], row["inner_len"], row["inner_ethertype"]) == (
        2,
        0xB,
        len(inner),
        0x0800,
    )
    assert (row["inner_ip_src"], row["inner_ip_dst"], row["inner_ip_proto"]) == ("30.0.0.1", "30.0.0.2", 1)
    assert "vxlan_flags" not in row


def test_geneve_carrying_ip_directly() -> None:
    inner = ipv4(icmp(8, 0), src="30.0.0.1", dst="30.0.0.2", proto=1)
    row = decode_one(ethernet(ipv4(udp(geneve(inner, 7, protocol=0x0800), dport=6081))))
    assert (row["inner_ethertype"], row["inner_ip_src"], row["inner_ip_proto"]) == (0x0800, "30.0.0.1", 1)


def test_vxlan_data_frame() -> None:
    inner = ethernet(
        ipv4(tcp(sport=80, dport=8080), src="10.32.0.1", dst="10.40.0.2", proto=6), src=MAC_B, dst=MAC_A
    )
    row = decode_one(ethernet(ipv4(udp(vxlan(inner, 0x7007), sport=50000, dport=6784))))
    assert (row["tun_type"], row["vxlan_flags"], row["vxlan_vni"], row["inner_len"]) == (
        1,
        8,
        0x7007,
        len(inner),
    )
    assert (row["inner_eth_src"], row["inner_eth_dst"], row["inner_ip_src"], row["inner_ip_proto"]) == (
        mac_int(MAC_B),
        mac_int(MAC_A),
        "10.32.0.1",
        6,
    )
    assert "inner_zero_eth" not in row and "weave_conn_uid" not in row


def test_fastdp_heartbeat() -> None:
    row = decode_one(fastdp_heartbeat(1376))
    assert row["ip_len"] == 1376 + 50 and row["inner_len"] == 14 + 1376 and row["inner_zero_eth"] is True
    assert (row["weave_conn_uid"], row["weave_hb_len"], row["inner_ethertype"]) == (UID, 1390, 0)


def test_zero_inner_ethernet_on_another_vxlan_port_is_not_a_weave_heartbeat() -> None:
    inner = fastdp_heartbeat_frame(UID, 1376)
    row = decode_one(ethernet(ipv4(udp(vxlan(inner, 1), dport=4789))))
    assert row["inner_zero_eth"] is True and "weave_conn_uid" not in row


def test_sleeve_heartbeat() -> None:
    payload = sleeve([sleeve_heartbeat_frame(UID)])
    frame = ethernet(ipv4(udp(payload, sport=6783, dport=6783, csum=0)))
    row = decode_one(frame)
    assert len(frame) == 84 and row["ip_len"] == 70 and row["udp_csum"] == 0
    assert (row["sleeve_sender"], row["sleeve_src_peer"], row["sleeve_dst_peer"]) == (
        mac_int(MAC_A),
        mac_int(MAC_A),
        mac_int(MAC_B),
    )
    assert (row["sleeve_frames"], row["sleeve_frame_len"], row["sleeve_zero_frame"]) == (1, 22, True)
    assert row["sleeve_counter"] == int.from_bytes(MAC_A + MAC_B[:2], "big") & ((1 << 63) - 1)


def test_sleeve_chain_of_several_frames() -> None:
    frames = [ethernet(ipv4(udp(b"a" * n))) for n in (10, 30, 5)]
    row = decode_one(ethernet(ipv4(udp(sleeve(frames), sport=6783, dport=6783))))
    assert (row["sleeve_frames"], row["sleeve_frame_len"]) == (3, len(frames[0]))
    assert "sleeve_zero_frame" not in row


def test_sleeve_chain_with_trailing_bytes_does_not_parse() -> None:
    row = decode_one(
        ethernet(ipv4(udp(sleeve([b"\x01" * 40, b"\x02" * 20]) + b"xx", sport=6783, dport=6783)))
    )
    assert "sleeve_frames" not in row  # -1, the missing value: the chain does not parse
    assert row["sleeve_frame_len"] == 40


def test_weave_control_handshake_and_overlay_control() -> None:
    key = dict(src="10.0.0.1", dst="10.0.0.2", proto=6)
    seq = 1000
    features = control_message(
        features_body({"Name": "02:aa:00:00:0a:01", "NickName": "host-a", "ShortID": "161"})
    )
    segments = [b"weave\x01\x02\x00", features, control_message(b"\x00"), bytes.fromhex("00000005070103059e")]
    frames = []
    for segment in segments:
        frames.append(ethernet(ipv4(tcp(segment, sport=40001, dport=6783, seq=seq), **key)))
        seq += len(segment)
    chunk = chunk_from_frames(frames)
    assert_same_columns(chunk)
    c = decode_chunk(chunk, SETTINGS, DecodeState()).columns
    assert c["ctl_msg"].tolist() == ["handshake", "features", "heartbeat", "overlay_ctl"]
    assert (c["ctl_proto_min"][0], c["ctl_proto_max"][0], c["ctl_encrypted"][0]) == (1, 2, 0)
    assert (c["ctl_peer_name"][1], c["ctl_nickname"][1], c["ctl_short_id"][1]) == (
        "02:aa:00:00:0a:01",
        "host-a",
        161,
    )
    assert (c["ctl_overlay_index"][3], c["ctl_overlay_subtag"][3], c["ctl_pmtu"][3]) == (1, 3, 1438)


def test_ports_and_fields_missing_when_snaplen_cuts_them() -> None:
    frame = fastdp_heartbeat()
    for cut in range(len(frame[:80]) + 1):
        chunk = chunk_from_frames([frame[:cut]], wirelen=[len(frame)])
        assert_same_columns(chunk)
    c = decode_chunk(chunk_from_frames([frame[: 14 + 20 + 8 + 8 + 14 + 4]]), SETTINGS, DecodeState()).columns
    assert c["vxlan_vni"][0] > 0 and c["inner_zero_eth"][0]
    assert c["weave_conn_uid"][0] == 0 and c["weave_hb_len"][0] == -1  # UID only half captured
    c = decode_chunk(chunk_from_frames([frame[: 14 + 20 + 4]]), SETTINGS, DecodeState()).columns
    assert c["ip_src"][0] == "192.168.1.10" and c["tun_type"][0] == 0
    assert (c["sport"][0], c["dport"][0], c["udp_len"][0]) == (
        51000,
        6784,
        -1,
    )  # each field when its bytes are there


def test_non_ip_frames_keep_link_fields() -> None:
    arp = ethernet(bytes(28), ethertype=0x0806)
    c = decode_chunk(chunk_from_frames([arp, b"\x01\x02", b""]), SETTINGS, DecodeState()).columns
    assert c["ethertype"].tolist() == [0x0806, -1, -1] and c["ip_version"].tolist() == [0, 0, 0]
    assert np.array_equal(c["frame"], [1, 2, 3])


def test_plain_ipv6_takes_the_fast_path() -> None:
    frames = [
        ethernet(ipv6(udp(b"v6", sport=5353, dport=5353), src="fe80::1", dst="ff02::fb"), ethertype=0x86DD),
        ethernet(ipv6(tcp(b"x" * 10, sport=443, dport=50000), next_header=6), ethertype=0x86DD),
        ethernet(
            ipv6(icmp(128, 0, b"\0\1\0\1"), next_header=58, src="2001:db8::a", dst="2001:db8::b"),
            ethertype=0x86DD,
        ),
    ]
    chunk = chunk_from_frames(frames)
    assert_same_columns(chunk)
    decoded = decode_chunk(chunk, SETTINGS, DecodeState())
    c = decoded.columns
    assert decoded.slow_frames == 0
    assert c["ip_src"].tolist() == ["fe80::1", "fd00::1", "2001:db8::a"] and c["ip_dst"][0] == "ff02::fb"
    assert c["dport"].tolist() == [5353, 50000, -1] and c["icmp_type"].tolist() == [-1, -1, 128]
    assert c["l4_payload_len"].tolist() == [2, 10, -1] and c["ip_len"].tolist() == [50, 70, 48]


def test_sleeve_batches_are_walked_on_the_fast_path_up_to_a_bound() -> None:
    short = ethernet(ipv4(udp(sleeve([b"a" * 60, b"b" * 70, b"c" * 80]), sport=6783, dport=6783)))
    long = ethernet(ipv4(udp(sleeve([b""] * 200), sport=6783, dport=6783)))
    cut = ethernet(ipv4(udp(sleeve([b"a" * 60, b"b" * 70, b"c" * 80]), sport=6783, dport=6783)))[:120]
    chunk = chunk_from_frames([short, long, cut])
    assert_same_columns(chunk)
    decoded = decode_chunk(chunk, SETTINGS, DecodeState(), engine="numpy")
    assert decoded.columns["sleeve_frames"].tolist() == [3, 200, -1]
    assert decoded.slow_frames == 1  # only the 200-frame chain, longer than the vectorised walk goes
    if core.available():  # the compiled core walks chains of any length
        decoded = decode_chunk(chunk, SETTINGS, DecodeState(), engine="core")
        assert decoded.columns["sleeve_frames"].tolist() == [3, 200, -1] and decoded.slow_frames == 0


def test_ports_come_from_the_settings() -> None:
    custom = Settings(weave_port=7000, vxlan_ports=frozenset(), geneve_ports=frozenset({7777}))
    inner = fastdp_heartbeat_frame(UID, 1376)
    frames = [
        ethernet(ipv4(udp(vxlan(inner, 5), dport=7001))),  # fastdp on weave_port + 1
        ethernet(ipv4(udp(vxlan(inner, 5), dport=6784))),  # the default fastdp port means nothing here
        ethernet(ipv4(udp(sleeve([sleeve_heartbeat_frame(UID)]), sport=7000, dport=7000))),
        ethernet(ipv4(udp(geneve(inner, 9), dport=7777))),
    ]
    chunk = chunk_from_frames(frames)
    assert_same_columns(chunk, custom)
    c = decode_chunk(chunk, custom, DecodeState()).columns
    assert c["tun_type"].tolist() == [1, 0, 0, 2]
    assert c["weave_conn_uid"].tolist() == [UID, 0, 0, 0]
    assert c["sleeve_frames"].tolist() == [-1, -1, 1, -1]
