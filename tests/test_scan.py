"""scan_capture end to end: a synthetic Weave capture (both dissectors), trains across chunks, ESP, keep modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import benchmark_generator, need_tool
from support.writers import write_pcap

from weavepcap import scan
from weavepcap.scan import scan_capture
from weavepcap.schema import COLUMN_NAMES
from weavepcap.settings import Settings

gen = benchmark_generator()


def esp(a: int, b: int, size: int = 1460) -> bytes:
    """An ESP packet between peers a and b (SPI 0x1234, sequence 1, opaque body)."""
    body = (0x1234).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes(size - 28)
    return gen.peer_frame(a, b, gen.ipv4(gen.PEERS[a], gen.PEERS[b], 50, body, df=True))


def weave_frames() -> tuple[list[bytes], dict[str, int]]:
    heartbeat = gen.fastdp(0, 1, gen.fastdp_heartbeat_inner(0xABCDEF))
    frames: list[bytes] = [
        esp(2, 3),  # 1: ESP before any Weave traffic between 2 and 3 is seen: decided at the end
        heartbeat,  # 2
        gen.icmp_frag_needed(heartbeat[14:], gen.PEERS[0], 1454),  # 3
        gen.sleeve(1, 0, [bytes(14) + (77).to_bytes(8, "big")], df=True),  # 4 sleeve heartbeat
        gen.fastdp(0, 1, gen.container_tcp(0, 1, 100, gen.TCP_ACK)),  # 5 fastdp data
        gen.sleeve(0, 1, [gen.container_tcp(0, 1, 50, gen.TCP_ACK)], df=False),  # 6 sleeve data
        gen.sleeve(0, 1, [bytes(1500 - 48)], df=True),  # 7 PMTU verification, outer IP 1500
        *gen.fragment_train(0, 1),  # 8..48 frag test
        gen.control(0, 1, bytes.fromhex("0000000100")),  # 49 TCP heartbeat
        gen.control(2, 3, bytes.fromhex("00000003070000")),  # 50 makes 2 <-> 3 Weave peers
        gen.arp(1, gen.PEERS[0], False),  # 51
        gen.background_ipv6(1, 10),  # 52
        gen.background_dns(1, False),  # 53
        esp(2, 3),  # 54
    ]
    expected = {
        "weave.fastdp.esp": 2, "weave.fastdp.heartbeat": 1, "icmp.frag_needed": 1, "weave.sleeve.heartbeat": 1,
        "weave.fastdp.data": 1, "weave.sleeve.data": 1, "weave.sleeve.pmtu_verify": 1, "weave.sleeve.fragtest": 41,
        "weave.control.heartbeat": 1, "weave.control": 1, "arp": 1, "other": 2,
    }
    return frames, expected


@pytest.fixture
def weave_pcap(tmp_path: Path) -> Path:
    frames, _ = weave_frames()
    return write_pcap(tmp_path / "host-a-eth0.pcap", frames)


def class_frames(result: object) -> dict[str, int]:
    return {name: v["frames"] for name, v in result.summary.classes.items()}  # type: ignore[attr-defined]


def test_synthetic_weave_capture_native(weave_pcap: Path) -> None:
    _, expected = weave_frames()
    result = scan_capture(str(weave_pcap), keep="all")
    assert class_frames(result) == expected
    assert result.host == "host-a"  # one naming policy with analyze: the interface is not the host
    s = result.summary
    assert s.frames == 54 and s.link_types == ["ETHERNET"]
    assert s.fastdp_heartbeats == [{"ip_len": 1426, "frame_len": 1440, "overlay_mtu": 1376, "frames": 1}]
    [icmp] = s.icmp_frag_needed
    assert icmp["next_hop_mtu"] == 1454 and icmp["frames"] == 1
    assert icmp["quoted"][0]["class"] == "weave.fastdp.heartbeat"
    assert s.fragment_trains == {"complete": 1}
    peers = {p["address"]: p for p in s.peers}
    assert set(peers) == set(gen.PEERS)
    assert peers[gen.PEERS[0]]["short_ids"] == [gen.SHORT_IDS[0]]
    assert peers[gen.PEERS[1]]["short_ids"] == [gen.SHORT_IDS[1]]
    packets = result.packets
    assert packets["frame"].tolist() == list(range(1, 55))
    assert set(COLUMN_NAMES) <= set(packets.columns) and {"capture", "host"} <= set(packets.columns)
    assert packets.loc[0, "klass"] == "weave.fastdp.esp" and not packets.loc[0, "uncertain"]
    assert packets.loc[6, "overlay_mtu"] == 1500
    assert set(packets.loc[7:47, "reasm_len"]) == {60049}
    assert str(packets["capture"].dtype) == "category" and packets["capture"].iloc[0] == "host-a-eth0.pcap"
    flows = result.flows_per_second
    assert int(flows["frames"].sum()) == 54
    assert int(flows.loc[flows["klass"] == "weave.fastdp.esp", "frames"].sum()) == 2


def test_synthetic_weave_capture_tshark_agrees_where_tshark_can(weave_pcap: Path) -> None:
    need_tool("tshark")
    _, expected = weave_frames()
    result = scan_capture(str(weave_pcap), keep="none", dissector="tshark")
    got = class_frames(result)
    # tshark does not parse sleeve payloads: what rests on the frame chain differs, the rest agrees.
    sleeve_chain = {"weave.sleeve.heartbeat", "weave.sleeve.data", "weave.sleeve.pmtu_verify", "weave.sleeve.encrypted"}
    assert {k: v for k, v in got.items() if k not in sleeve_chain} == {
        k: v for k, v in expected.items() if k not in sleeve_chain and k != "weave.control.heartbeat"
    } | {"weave.control": 2}
    assert sum(got.get(k, 0) for k in sleeve_chain) == 3


def test_trains_spanning_chunks_give_the_same_result(weave_pcap: Path) -> None:
    big = scan_capture(str(weave_pcap), keep="all")
    small = scan_capture(str(weave_pcap), Settings(chunk_bytes=4096), keep="all")
    assert small.summary.to_dict() == big.summary.to_dict()
    assert small.packets["klass"].tolist() == big.packets["klass"].tolist()
    assert small.packets["frag_train"].tolist() == big.packets["frag_train"].tolist()


def test_keep_modes(weave_pcap: Path) -> None:
    notable = scan_capture(str(weave_pcap), keep="notable").packets
    assert len(notable) == 52 and "other" not in set(notable["klass"])
    assert len(scan_capture(str(weave_pcap), keep="none").packets) == 0
    with pytest.raises(ValueError):
        scan_capture(str(weave_pcap), keep="some")


def test_lone_esp_is_other_and_uncertain(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "esp.pcap", [esp(0, 1), esp(1, 0)])
    result = scan_capture(str(path), keep="notable")
    assert class_frames(result) == {"other": 2}
    assert [u["class"] for u in result.summary.uncertain] == ["other"]
    assert len(result.packets) == 0


def test_host_from_spec_and_progress(weave_pcap: Path) -> None:
    calls: list[tuple[int, int]] = []
    result = scan_capture(f"node-1={weave_pcap}", Settings(chunk_bytes=4096), keep="none",
                          progress=lambda done, total: calls.append((done, total)))
    assert result.host == "node-1"
    assert len(calls) > 1 and calls[-1][0] == calls[-1][1] == weave_pcap.stat().st_size
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:], strict=False))


def test_timestamps_and_bytes(weave_pcap: Path) -> None:
    frames, _ = weave_frames()
    s = scan_capture(str(weave_pcap), keep="none").summary
    assert s.bytes == sum(len(f) for f in frames)
    d = s.to_dict()
    assert d["first_time"].endswith("Z") and d["duration_s"] == pytest.approx((len(frames) - 1) / 1000)
    assert np.isclose(d["duration_s"], 0.053)


def test_sink_streams_rows_in_frame_order(weave_pcap: Path) -> None:
    whole = scan_capture(str(weave_pcap), keep="all").packets
    batches: list[pd.DataFrame] = []
    result = scan_capture(str(weave_pcap), Settings(chunk_bytes=4096), keep="all", sink=batches.append)
    assert len(result.packets) == 0 and len(batches) > 1
    streamed = pd.concat(batches, ignore_index=True)
    assert streamed["frame"].tolist() == list(range(1, 55))
    assert streamed["klass"].tolist() == whole["klass"].astype(str).tolist()
    # The ESP of frame 1 waited until frame 50 showed its hosts to be Weave peers.
    assert streamed.loc[0, "klass"] == "weave.fastdp.esp"
    assert set(streamed["capture"]) == {"host-a-eth0.pcap"} and set(streamed["host"]) == {"host-a"}


def test_sink_reorder_buffer_is_bounded(weave_pcap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "REORDER_MAX_ROWS", 2)
    batches: list[pd.DataFrame] = []
    result = scan_capture(str(weave_pcap), Settings(chunk_bytes=4096), keep="all", sink=batches.append)
    streamed = pd.concat(batches, ignore_index=True)
    assert sorted(streamed["frame"].tolist()) == list(range(1, 55))
    # Forced out early, the first ESP row could not wait for its peers: `other`, though the summary,
    # which sees the whole capture, counts both ESP frames as Weave.
    assert streamed.set_index("frame").loc[1, "klass"] == "other"
    assert result.summary.classes["weave.fastdp.esp"]["frames"] == 2


def test_flows_per_second_agree_with_the_packet_rows(weave_pcap: Path) -> None:
    result = scan_capture(str(weave_pcap), Settings(chunk_bytes=4096), keep="all")
    rows = result.packets.astype({"ip_src": str, "ip_dst": str, "klass": str})
    rows["second"] = rows["ts_ns"] // 1_000_000_000
    expected = rows.groupby(["second", "ip_src", "ip_dst", "klass"]).agg(
        frames=("frame", "size"), bytes=("wirelen", "sum")).reset_index()
    got = result.flows_per_second
    assert list(got.columns) == ["second", "ip_src", "ip_dst", "klass", "frames", "bytes"]
    key = ["second", "ip_src", "ip_dst", "klass"]
    assert got.sort_values(key).to_dict("records") == expected.sort_values(key).to_dict("records")


def test_provisional_esp_rows_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "PROVISIONAL_ESP_MAX_ROWS", 3)
    frames = [esp(0, 1) for _ in range(40)] + [gen.control(0, 1, bytes.fromhex("0000000100"))]
    path = write_pcap(tmp_path / "esp-first.pcap", frames)
    result = scan_capture(str(path), Settings(chunk_bytes=4096), keep="notable")
    # The summary sees the whole capture: all 40 are Weave ESP; the rows decided early were dropped as `other`.
    assert result.summary.classes["weave.fastdp.esp"]["frames"] == 40
    assert 0 < (result.packets["klass"] == "weave.fastdp.esp").sum() < 40
