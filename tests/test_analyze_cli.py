"""`weavepcap analyze` at the command line: outputs, options, exit codes, damaged and unreadable input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES
from typer.testing import CliRunner

from weavepcap.cli import app
from weavepcap.errors import ExitCode

P2 = SAMPLES / "p2-router"
P2_ARGS = ["host-a=host-a-eth0.pcap", "host-a=host-a-lo.pcap", "host-b=host-b-eth0.pcap", "host-b=host-b-lo.pcap"]

needs_p2 = pytest.mark.skipif(not (P2 / "expected.json").exists(), reason="sample p2-router not recorded")
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["analyze", *args])
    return result.exit_code, result.stdout, result.stderr


def p2_args() -> list[str]:
    out = []
    for a in P2_ARGS:
        host, _, name = a.partition("=")
        out.append(f"{host}={P2 / name}")
    return out


@needs_p2
def test_terminal_summary_has_verdict_evidence_filters_and_fix() -> None:
    code, out, _ = run(*p2_args())
    assert code == int(ExitCode.OK)
    assert "fastdp-heartbeat-exceeds-path-mtu" in out
    assert "frame.number == 15" in out  # the router's ICMP, the most telling frame
    assert "udp.port==6784,vxlan" in out  # how to see UDP 6784 as VXLAN
    assert "Fix:" in out and "1404" in out
    assert "Traceback" not in out


@needs_p2
def test_json_to_stdout_and_file_are_the_same_document(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    code, out, _ = run(*p2_args(), "--format", "json", "--json", str(target))
    assert code == 0
    doc = json.loads(out)
    saved = json.loads(target.read_text())
    assert doc["format_version"] == 1 == saved["format_version"]
    assert doc["verdict"] == saved["verdict"]
    assert doc["verdict"]["root_cause"] == "fastdp-heartbeat-exceeds-path-mtu"


@needs_p2
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_timeline_file(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"events{suffix}"
    code, _, _ = run(*p2_args(), "--timeline", str(target))
    assert code == 0
    table = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
    assert {"time", "t", "host", "capture", "frame", "event", "message", "filter"} <= set(table.columns)
    assert "icmp.frag_needed" in set(table["event"])
    assert table["t"].is_monotonic_increasing


@needs_p2
def test_fail_on_fault_exits_1() -> None:
    code, _, _ = run(*p2_args(), "--fail-on-fault")
    assert code == int(ExitCode.FAULT_FOUND)


@needs_p2
def test_clock_offset_is_forced_and_reported() -> None:
    code, out, _ = run(*p2_args(), "--clock-offset", "host-b=0.25", "--format", "json")
    assert code == 0
    host_b = next(h for h in json.loads(out)["hosts"] if h["name"] == "host-b")
    assert host_b["clock_offset_s"] == 0.25 and host_b["clock_source"] == "forced"


@pytest.mark.parametrize("bad", ["host-b", "host-b=soon", "=1"])
def test_bad_clock_offset_is_a_usage_error(bad: str) -> None:
    code, _, err = run(str(P2 / "host-a-eth0.pcap"), "--clock-offset", bad)
    assert code == int(ExitCode.USAGE)
    assert "--clock-offset" in err and "Traceback" not in err


def test_bad_format_and_timeline_suffix_are_usage_errors(tmp_path: Path) -> None:
    assert run(str(P2 / "host-a-eth0.pcap"), "--format", "xml")[0] == int(ExitCode.USAGE)
    assert run(str(P2 / "host-a-eth0.pcap"), "--timeline", str(tmp_path / "t.txt"))[0] == int(ExitCode.USAGE)


def test_unreadable_input_exits_3_with_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all" * 10)
    code, out, err = run(str(junk))
    assert code == int(ExitCode.BAD_INPUT)
    assert "junk.pcap" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = run(str(tmp_path / "missing.pcap"))
    assert code == int(ExitCode.BAD_INPUT)


@needs_p2
def test_damaged_capture_still_gets_a_verdict_with_a_caveat(tmp_path: Path) -> None:
    data = (P2 / "host-a-eth0.pcap").read_bytes()
    cut = tmp_path / "host-a-eth0.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3 + 7])  # cut inside a record
    shutil.copy(P2 / "host-a-lo.pcap", tmp_path / "host-a-lo.pcap")
    code, out, _ = run(f"host-a={cut}", f"host-a={tmp_path / 'host-a-lo.pcap'}", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["verdict"]["root_cause"] == "fastdp-heartbeat-exceeds-path-mtu"
    damaged = next(c for c in doc["captures"] if c["name"] == "host-a-eth0.pcap")
    assert damaged["damage"]
    assert any("damaged" in c for c in doc["caveats"])


@needs_p2
def test_html_and_plots(tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    plots = tmp_path / "plots"
    plots.mkdir()
    code, _, _ = run(*p2_args(), "--html", str(page), "--plots", str(plots))
    assert code == 0
    assert "fastdp-heartbeat-exceeds-path-mtu" in page.read_text()
    assert len(list(plots.glob("*.png"))) == 4


@needs_p2
def test_plots_without_html(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    code, _, _ = run(*p2_args(), "--plots", str(plots))
    assert code == 0
    assert len(list(plots.glob("*.png"))) == 4
