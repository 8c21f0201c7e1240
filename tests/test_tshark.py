"""The tshark reference dissector: columns from hand-built Weave frames, chunking, damage, a missing tshark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import benchmark_generator, need_tool, real_captures
from support.writers import write_pcap

from weavepcap.errors import CaptureError, WeavepcapError
from weavepcap.io.records import Damage
from weavepcap.settings import DEFAULT_SETTINGS
from weavepcap.tshark import find_tshark, iter_tshark_columns

gen = benchmark_generator()


def table(path: Path, **kwargs: object) -> pd.DataFrame:
    chunks = list(iter_tshark_columns(path, DEFAULT_SETTINGS, **kwargs))  # type: ignore[arg-type]
    return pd.concat([pd.DataFrame(c) for c in chunks], ignore_index=True).set_index("frame", drop=False)


@pytest.fixture
def weave_capture(tmp_path: Path) -> Path:
    heartbeat = gen.fastdp(0, 3, gen.fastdp_heartbeat_inner(0xABCDEF))
    frames = [
        heartbeat,  # 1
        gen.icmp_frag_needed(heartbeat[14:], gen.PEERS[0], 1454),  # 2
        gen.sleeve(1, 2, [bytes(14) + (77).to_bytes(8, "big")], df=True),  # 3
        *gen.fragment_train(0, 1),  # 4 .. 44
        gen.background_tcp(7, 100, gen.TCP_ACK | gen.TCP_PSH, 120),  # 45
        gen.arp(1, gen.PEERS[0], False),  # 46
        gen.background_ipv6(1, 10),  # 47
        gen.control(0, 1, bytes.fromhex("0000000100")),  # 48
    ]
    return write_pcap(tmp_path / "weave.pcap", frames)


def test_fastdp_heartbeat_and_the_icmp_error_that_quotes_it(weave_capture: Path) -> None:
    need_tool("tshark")
    t = table(weave_capture)
    hb = t.loc[1]
    vni = (gen.SHORT_IDS[3] << 12) | gen.SHORT_IDS[0]
    assert (hb.ip_src, hb.ip_dst, hb.ip_len, bool(hb.ip_df), hb.dport) == (gen.PEERS[0], gen.PEERS[3], 1426, True, 6784)
    assert (hb.tun_type, hb.vxlan_flags, hb.vxlan_vni, hb.inner_len) == (1, 0x08, vni, 14 + gen.OVERLAY_MTU)
    assert bool(hb.inner_zero_eth) and hb.caplen == hb.wirelen == 1440 and hb.l3_off == 14

    icmp = t.loc[2]
    assert (icmp.ip_src, icmp.icmp_type, icmp.icmp_code, icmp.icmp_mtu) == (gen.ROUTER, 3, 4, 1454)
    assert (icmp.sport, icmp.dport, icmp.tun_type) == (-1, -1, 0), "the quoted UDP header is not the frame's own"
    assert (icmp.q_ip_version, icmp.q_ip_src, icmp.q_ip_dst, icmp.q_ip_len) == (4, gen.PEERS[0], gen.PEERS[3], 1426)
    assert (bool(icmp.q_ip_df), icmp.q_ip_proto, icmp.q_dport, icmp.q_vxlan_vni) == (True, 17, 6784, vni)


def test_fragment_train_keeps_ports_on_the_first_fragment_only(weave_capture: Path) -> None:
    need_tool("tshark")
    train = table(weave_capture).loc[4:44]
    assert len(train) == 41 and train.ip_id.nunique() == 1
    assert list(train.ip_frag_off) == [k * 1480 for k in range(41)]
    assert train.ip_mf.tolist() == [True] * 40 + [False]
    assert not train.ip_df.any()
    assert (train.sport.iloc[0], train.dport.iloc[0], train.udp_len.iloc[0]) == (6783, 6783, 60029)
    assert (train.sport.iloc[1:] == -1).all(), "tshark must not reassemble: later fragments carry no ports"


def test_link_layer_vlan_arp_ipv6_and_tcp(weave_capture: Path) -> None:
    need_tool("tshark")
    t = table(weave_capture)
    assert (t.loc[45].vlan, t.loc[45].ethertype, t.loc[45].l3_off, t.loc[45].sport) == (120, 0x0800, 18, 443)
    assert (t.loc[45].tcp_flags, t.loc[45].l4_payload_len) == (0x18, 100)
    assert (t.loc[46].ethertype, t.loc[46].ip_version, t.loc[46].ip_src) == (0x0806, 0, "")
    assert (t.loc[47].ip_version, t.loc[47].ip_proto, t.loc[47].ip_len, t.loc[47].ip_hdr_len) == (6, 6, 40 + 20 + 10, 40)
    assert (t.loc[48].dport, t.loc[48].tcp_seq, t.loc[48].tcp_ack) == (6783, 7000, 9000)
    sleeve = t.loc[3]
    assert (sleeve.ip_len, bool(sleeve.ip_df), sleeve.udp_csum, sleeve.tun_type) == (70, True, 0, 0)
    assert list(t.frame) == list(range(1, 49))
    assert t.ts_ns.is_monotonic_increasing and (t.linktype == 1).all()


def test_chunks_are_bounded_and_consecutive(weave_capture: Path) -> None:
    need_tool("tshark")
    chunks = list(iter_tshark_columns(weave_capture, chunk_frames=10))
    assert [len(c["frame"]) for c in chunks] == [10, 10, 10, 10, 8]
    assert np.concatenate([c["frame"] for c in chunks]).tolist() == list(range(1, 49))


def test_a_record_cut_short_is_damage_not_an_error(tmp_path: Path) -> None:
    need_tool("tshark")
    path = write_pcap(tmp_path / "cut.pcap", [gen.arp(0, gen.PEERS[1], True)] * 3)
    path.write_bytes(path.read_bytes()[:-10])
    damage: list[Damage] = []
    t = table(path, damage=damage)
    assert len(t) == 2
    assert len(damage) == 1 and "cut short" in damage[0].message and "\n" not in damage[0].message


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_captures_are_dissected_whatever_tshark_reads_itself(tmp_path: Path, compression: str) -> None:
    need_tool("tshark")
    frames = [gen.arp(0, gen.PEERS[1], True), gen.background_dns(1, False)]
    path = write_pcap(tmp_path / "capture", frames, compression=compression)  # no telling suffix
    t = table(path)
    assert list(t.ethertype) == [0x0806, 0x0800] and t.loc[2].dport == 53


def test_corrupt_compression_is_one_line_capture_error(tmp_path: Path) -> None:
    need_tool("tshark")
    whole = write_pcap(tmp_path / "whole.xz", [gen.background_dns(1, False)] * 50, compression="xz").read_bytes()
    path = tmp_path / "cut.xz"
    path.write_bytes(whole[:40])
    with pytest.raises(CaptureError) as caught:
        list(iter_tshark_columns(path))
    assert "decompression failed" in str(caught.value) and "\n" not in str(caught.value)


def test_not_a_capture_is_one_line_capture_error(tmp_path: Path) -> None:
    need_tool("tshark")
    path = tmp_path / "notes.pcap"
    path.write_text("not a capture\n")
    with pytest.raises(CaptureError) as caught:
        list(iter_tshark_columns(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_tshark_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # pyshark also looks for a config.ini in the working directory
    with pytest.raises(WeavepcapError) as caught:
        find_tshark()
    assert "tshark not found" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(WeavepcapError):
        next(iter_tshark_columns(tmp_path / "any.pcap"))


def test_layer_attribution_agrees_with_pyshark_packet_objects() -> None:
    """Cross-check our reading of `-T fields` output against pyshark's own (PDML) layer objects."""
    need_tool("tshark")
    captures = {p.name: p for p in real_captures()}
    name = "suricata-verify__filestore-icmp-frag-needed.pcap"
    if name not in captures:
        pytest.skip("shared real captures are not beside the checkout")
    import pyshark

    ours = table(captures[name])
    checked = 0
    capture = pyshark.FileCapture(str(captures[name]), keep_packets=False, override_prefs={"ip.defragment": "FALSE"})
    try:
        for packet in capture:
            row = ours.loc[int(packet.number)]
            ip_layers = [layer for layer in packet.layers if layer.layer_name == "ip"]
            assert row.ip_src == ip_layers[0].src and row.ip_dst == ip_layers[0].dst
            if hasattr(packet, "icmp"):
                assert (row.icmp_type, row.icmp_mtu) == (int(packet.icmp.type), int(packet.icmp.mtu))
                # pyshark nests the quoted packet inside its icmp layer; we keep it in the q_* columns
                assert (row.q_ip_src, row.q_ip_dst) == (packet.icmp.ip_src, packet.icmp.ip_dst)
                assert (row.q_sport, row.q_ip_len) == (int(packet.icmp.tcp_srcport), int(packet.icmp.ip_len))
                assert row.sport == -1
                checked += 1
            elif hasattr(packet, "tcp"):
                assert (row.sport, row.dport) == (int(packet.tcp.srcport), int(packet.tcp.dstport))
            if int(packet.number) >= 60:  # bounded: enough frames to cover three ICMP errors
                break
    finally:
        capture.close()
    assert checked == 3  # frames 9, 20 and 58
