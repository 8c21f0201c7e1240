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
    assert set(a.hosts) >= {"host-a", "host-b-eth0"}
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
