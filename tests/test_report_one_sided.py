"""Reports of one-sided captures: heartbeats whose sender or receiver was not captured."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLES
from typer.testing import CliRunner

from weavepcap.cli import app
from weavepcap.report import plots


def test_ladder_draws_heartbeats_seen_from_one_side_only() -> None:
    heartbeats = [
        {"src_host": "host-a", "dst_host": "host-b", "kind": "fastdp", "t_sent": None, "t_received": 0.5,
         "frame": 3, "capture": "b.pcap", "size": 1474, "receiver_captured": True},
        {"src_host": "host-b", "dst_host": "host-a", "kind": "sleeve", "t_sent": 1.0, "t_received": None,
         "frame": 4, "capture": "b.pcap", "size": 84, "receiver_captured": False},
        {"src_host": "host-b", "dst_host": "host-a", "kind": "fastdp", "t_sent": 1.5, "t_received": None,
         "frame": 5, "capture": "b.pcap", "size": 1474, "receiver_captured": True},
    ]
    png = plots.heartbeat_ladder(heartbeats, ["host-a", "host-b"])
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_analyze_html_on_one_host_capture_runs_and_marks_unknown_fate(tmp_path: Path) -> None:
    out_html, out_json = tmp_path / "r.html", tmp_path / "r.json"
    capture = SAMPLES / "healthy-fastdp" / "host-b-eth0.pcap"
    result = CliRunner().invoke(app, ["analyze", str(capture), "--html", str(out_html), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out_json.read_text())
    ladder = doc["series"]["heartbeats"]
    # host-b's own heartbeats to host-a: host-a has no capture, so they are of unknown fate, not lost.
    sent = [h for h in ladder if h["t_sent"] is not None]
    assert sent and all(h["receiver_captured"] is False and h["t_received"] is None for h in sent)
    # host-a's heartbeats are seen only where they arrived.
    assert any(h["t_sent"] is None and h["t_received"] is not None for h in ladder)
    assert out_html.read_text().count("data:image/png;base64,") >= 4
    again = CliRunner().invoke(app, ["report", str(out_json), "--html", str(tmp_path / "again.html")])
    assert again.exit_code == 0, again.output
