"""`weavepcap classify` at the command line: text, JSON, timeline files, options, several captures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import need_tool
from rich.console import Console
from support.writers import write_pcap
from test_scan import gen, weave_frames
from typer.testing import CliRunner

from weavepcap.cli import app
from weavepcap.commands import _common as common
from weavepcap.commands import classify as classify_command

runner = CliRunner()


@pytest.fixture
def weave_pcap(tmp_path: Path) -> Path:
    frames, _ = weave_frames()
    return write_pcap(tmp_path / "host-a-eth0.pcap", frames)


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["classify", *args], input=stdin)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_text_output(weave_pcap: Path) -> None:
    code, out, err = run(str(weave_pcap))
    assert code == 0, err
    assert "(host host-a" in out
    assert "frames 54" in out and "link types: ETHERNET" in out
    assert "weave.sleeve.fragtest" in out and "41 frames" in out
    assert "fastdp heartbeats: IP 1426 / frame 1440 bytes -> overlay MTU 1376 (1 frames)" in out
    assert "ICMP frag-needed: MTU 1454 (1 frames)" in out
    assert "[weave.fastdp.heartbeat]" in out
    assert gen.PEERS[0] in out and f"short ids {gen.SHORT_IDS[0]}" in out
    assert "fragment trains: complete 1" in out
    assert err == ""


def test_json_output(weave_pcap: Path) -> None:
    code, out, _ = run("--format", "json", f"node-a={weave_pcap}")
    assert code == 0
    doc = json.loads(out)
    assert doc["format_version"] == 1
    [cap] = doc["captures"]
    assert cap["host"] == "node-a" and cap["path"] == str(weave_pcap) and cap["frames"] == 54
    assert cap["link_types"] == ["ETHERNET"] and cap["damage"] == []
    assert cap["classes"]["weave.fastdp.heartbeat"] == {"frames": 1, "bytes": 1440}
    assert cap["classes"]["weave.fastdp.esp"]["frames"] == 2
    assert cap["fastdp_heartbeats"] == [{"ip_len": 1426, "frame_len": 1440, "overlay_mtu": 1376, "frames": 1}]
    assert cap["icmp_frag_needed"][0]["next_hop_mtu"] == 1454
    assert cap["icmp_frag_needed"][0]["quoted"][0]["dport"] == 6784
    assert {p["address"] for p in cap["peers"]} == set(gen.PEERS)
    for key in ("first_time", "last_time", "uncertain", "fragment_trains", "icmpv6_packet_too_big", "bytes"):
        assert key in cap


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_timeline(weave_pcap: Path, tmp_path: Path, suffix: str) -> None:
    out_path = tmp_path / f"timeline{suffix}"
    code, _, err = run("--format", "json", "--timeline", str(out_path), str(weave_pcap), f"b={weave_pcap}")
    assert code == 0, err
    table = pd.read_csv(out_path) if suffix == ".csv" else pd.read_parquet(out_path)
    assert len(table) == 2 * 54
    assert table["host"].astype(str).tolist()[-1] == "b"
    assert table["capture"].astype(str).unique().tolist() == ["host-a-eth0.pcap"]
    assert (table["klass"].astype(str) == "weave.fastdp.heartbeat").sum() == 2
    assert "wrote 108 rows" in err


def test_timeline_needs_a_known_suffix(weave_pcap: Path, tmp_path: Path) -> None:
    code, out, err = run("--timeline", str(tmp_path / "t.txt"), str(weave_pcap))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and ".csv or .parquet" in err


def test_weave_port_option_moves_the_table(weave_pcap: Path) -> None:
    code, out, _ = run("--format", "json", "--weave-port", "7000", str(weave_pcap))
    assert code == 0
    classes = json.loads(out)["captures"][0]["classes"]
    assert not any(name.startswith("weave.") for name in classes)


def test_vxlan_port_option(tmp_path: Path) -> None:
    inner = gen.container_tcp(0, 1, 10, gen.TCP_ACK)
    frame = gen.peer_frame(0, 1, gen.ipv4(gen.PEERS[0], gen.PEERS[1], 17, gen.udp(40000, 9999, gen.vxlan(100, inner))))
    path = write_pcap(tmp_path / "v.pcap", [frame])
    _, out, _ = run("--format", "json", str(path))
    assert json.loads(out)["captures"][0]["classes"] == {"other": {"frames": 1, "bytes": len(frame)}}
    _, out, _ = run("--format", "json", "--vxlan-port", "9999", str(path))
    assert json.loads(out)["captures"][0]["classes"] == {"overlay.vxlan": {"frames": 1, "bytes": len(frame)}}


def test_bad_options_are_usage_errors(weave_pcap: Path) -> None:
    assert run("--format", "xml", str(weave_pcap))[0] == 2
    assert run("--dissector", "scapy", str(weave_pcap))[0] == 2
    assert run("--weave-port", "70000", str(weave_pcap))[0] == 2


def test_stdin(weave_pcap: Path) -> None:
    code, out, _ = run("--format", "json", "h=-", stdin=weave_pcap.read_bytes())
    assert code == 0
    [cap] = json.loads(out)["captures"]
    assert cap["host"] == "h" and cap["frames"] == 54


def test_one_bad_capture_among_good_ones(weave_pcap: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n")
    code, out, err = run("--format", "json", str(weave_pcap), str(bad))
    assert code == 3
    assert [c["frames"] for c in json.loads(out)["captures"]] == [54]
    assert err.count("\n") == 1 and "notes.txt" in err


def test_tshark_dissector(weave_pcap: Path) -> None:
    need_tool("tshark")
    code, out, err = run("--format", "json", "--dissector", "tshark", str(weave_pcap))
    assert code == 0, err
    classes = json.loads(out)["captures"][0]["classes"]
    assert classes["weave.fastdp.heartbeat"]["frames"] == 1 and classes["weave.sleeve.fragtest"]["frames"] == 41


def test_timeline_unwritable_is_one_line(weave_pcap: Path, tmp_path: Path) -> None:
    code, out, err = run("--timeline", str(tmp_path / "no-such-dir" / "t.csv"), str(weave_pcap))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "cannot write" in err


def test_timeline_parquet_types(weave_pcap: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "t.parquet"
    assert run("--timeline", str(out_path), str(weave_pcap))[0] == 0
    table = pd.read_parquet(out_path)
    assert str(table["frame"].dtype) == "int64" and str(table["eth_src"].dtype) == "uint64"
    assert table["frame"].tolist() == list(range(1, 55))
    assert table.loc[table["klass"] == "weave.fastdp.heartbeat", "overlay_mtu"].tolist() == [1376]


def test_empty_capture(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "empty.pcap", [])
    code, out, _ = run(str(path))
    assert code == 0 and "frames 0" in out and "(no frames)" in out
    code, out, _ = run("--format", "json", str(path))
    cap = json.loads(out)["captures"][0]
    assert cap["frames"] == 0 and cap["classes"] == {} and cap["first_time"] is None


def test_progress_bar_on_a_terminal(weave_pcap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=screen, force_terminal=True, width=100))
    monkeypatch.setattr(classify_command, "PROGRESS_MIN_BYTES", 0)
    code, out, _ = run("--format", "json", str(weave_pcap))
    assert code == 0 and json.loads(out)["captures"][0]["frames"] == 54
    assert weave_pcap.name in screen.getvalue()  # the bar was drawn (and removed: transient)
