"""The Python API: weavepcap.analyze(paths) -> Analysis with DataFrames, verdict, findings and the JSON dict."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES

import weavepcap
from weavepcap.io.records import CaptureSpec

P2 = SAMPLES / "p2-router"
pytestmark = pytest.mark.skipif(not (P2 / "expected.json").exists(), reason="sample p2-router not recorded")


def test_analyze_takes_paths_host_specs_and_capture_specs() -> None:
    a = weavepcap.analyze([f"host-a={P2 / 'host-a-eth0.pcap'}", Path(P2 / "host-b-eth0.pcap"),
                           CaptureSpec(str(P2 / "host-a-lo.pcap"), host="host-a")])
    assert isinstance(a, weavepcap.Analysis)
    assert isinstance(a.packets, pd.DataFrame) and isinstance(a.events, pd.DataFrame)
    assert {"t_ns", "dir", "src_host", "dst_host", "capture", "host", "frame", "klass"} <= set(a.packets.columns)
    assert set(a.hosts) >= {"host-a", "host-b"}  # host-b from the file name, interface dropped
    assert a.hosts["host-b"].captures == ["host-b-eth0.pcap"]
    assert a.verdict.root_cause == "fastdp-heartbeat-exceeds-path-mtu"
    assert a.findings[0].rule == a.verdict.root_cause
    assert 0.0 <= a.verdict.confidence <= 1.0


def test_to_dict_and_to_json_agree_and_carry_no_numpy_types() -> None:
    a = weavepcap.analyze([f"host-a={P2 / 'host-a-eth0.pcap'}", f"host-b={P2 / 'host-b-eth0.pcap'}"])
    doc = a.to_dict()
    assert json.loads(json.dumps(doc)) == json.loads(a.to_json())
    assert doc["format_version"] == 1
    assert {r["id"] for r in doc["rules"]} >= {"healthy", "undetermined", "pmtu-blackhole"}
    ladder = doc["series"]["heartbeats"]
    assert any(h["kind"] == "fastdp" and h["t_received"] is None for h in ladder)  # the lost heartbeat
    assert any(h["kind"] == "sleeve" and h["t_received"] is not None for h in ladder)
    assert doc["series"]["rates"] and doc["series"]["packets"]


def test_unreadable_capture_raises_capture_error(tmp_path: Path) -> None:
    from weavepcap.errors import CaptureError

    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 3)
    with pytest.raises(CaptureError):
        weavepcap.analyze([str(bad)])


def test_thinner_keeps_special_rows_and_a_bounded_share_of_bulk_data() -> None:
    from weavepcap.api import THIN_HEAD, THIN_STRIDE, THIN_TAIL, Thinner
    from weavepcap.schema import PACKET_COLUMNS, empty_columns

    n = 5000
    cols = empty_columns(n)
    cols["frame"][:] = range(1, n + 1)
    cols["ip_src"][:] = "10.0.0.1"
    cols["ip_dst"][:] = "10.0.0.2"
    cols["klass"][:] = "weave.fastdp.data"
    cols["klass"][::97] = "weave.fastdp.heartbeat"  # special rows scattered through the data
    frame = pd.DataFrame({c.name: cols[c.name] for c in PACKET_COLUMNS})
    sink = Thinner()
    for start in range(0, n, 1234):  # chunks, as the scan hands them over
        sink(frame.iloc[start:start + 1234].reset_index(drop=True))
    kept = sink.frame()
    assert kept["frame"].is_monotonic_increasing and kept["frame"].is_unique
    special = set(frame.loc[frame["klass"] == "weave.fastdp.heartbeat", "frame"])
    assert special <= set(kept["frame"])
    data = kept[kept["klass"] == "weave.fastdp.data"]["frame"].to_numpy()
    bulk_frames = frame.loc[frame["klass"] == "weave.fastdp.data", "frame"].to_numpy()
    assert set(bulk_frames[:THIN_HEAD]) <= set(data)  # the head
    assert set(bulk_frames[-THIN_TAIL:]) <= set(data)  # the tail (e.g. a host's last transmissions)
    assert len(data) < THIN_HEAD + THIN_TAIL + len(bulk_frames) // THIN_STRIDE + 10


@pytest.mark.parametrize(("name", "host"), [("host-a-eth0", "host-a"), ("host-a-lo", "host-a"), ("node1_ens3", "node1"),
                                            ("router-left", "router-left"), ("lo", "lo"), ("capture", "capture")])
def test_host_from_file_name_drops_the_interface(name: str, host: str) -> None:
    from weavepcap.naming import host_from_file_name

    assert host_from_file_name(name) == host
