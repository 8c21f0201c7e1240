"""The recorded samples are complete and consistent: README, expected.json schema, captures, frame counts."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, need_tool

from weavepcap.classes import CLASS_NAMES

SCENARIOS = (
    "healthy-fastdp", "p2-router", "p2-local-mtu", "mtu-blackhole", "p1-tx-stall", "fastdp-port-blocked",
    "sleeve-port-blocked", "control-refused", "fragments-dropped", "ipv6-ptb", "flannel-8472-mtu", "no-overlay",
    "xss-nickname",
)
ROOT_CAUSES = {
    "healthy", "fastdp-heartbeat-exceeds-path-mtu", "pmtu-blackhole", "tx-stall-after-pmtu-probe",
    "fastdp-port-blocked", "sleeve-port-blocked", "control-connection-refused", "fragments-dropped",
    "no-weave-traffic", "peer-silent", "undetermined",
}
TOP_KEYS = {"scenario", "root_cause", "description", "kernel", "analyze_args", "hosts", "facts", "evidence",
            "clock_offsets", "captures"}
MTU_SCENARIOS = ("p2-router", "p2-local-mtu", "mtu-blackhole", "ipv6-ptb")


def load(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name / "expected.json").read_text(encoding="utf-8"))


def pcap_timestamps(path: Path) -> list[int]:
    """Record timestamps in ticks of a classic pcap (little-endian, as tcpdump writes here)."""
    data = path.read_bytes()
    (magic,) = struct.unpack("<I", data[:4])
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), f"{path.name}: unexpected magic {magic:#x}"
    ticks = 1_000_000 if magic == 0xA1B2C3D4 else 1_000_000_000
    out, pos = [], 24
    while pos + 16 <= len(data) and len(out) < 1_000_000:
        sec, frac, incl, _ = struct.unpack("<IIII", data[pos : pos + 16])
        out.append(sec * ticks + frac)
        pos += 16 + incl
    return out


def test_every_scenario_is_recorded() -> None:
    present = {p.parent.name for p in SAMPLES.glob("*/expected.json")}
    assert set(SCENARIOS) <= present, f"missing: {sorted(set(SCENARIOS) - present)}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_expected_json_schema(name: str) -> None:
    folder = SAMPLES / name
    assert (folder / "README.md").is_file()
    exp = load(name)
    assert TOP_KEYS <= set(exp), sorted(TOP_KEYS - set(exp))
    assert exp["scenario"] == name
    assert exp["root_cause"] in ROOT_CAUSES
    assert isinstance(exp["description"], str) and len(exp["description"]) > 40
    assert exp["kernel"]
    for host, info in exp["hosts"].items():
        assert set(info) == {"addresses", "captures"}, host
        for cap in info["captures"]:
            assert cap in exp["captures"], f"{host}: {cap} has no frame counts"
    for arg in exp["analyze_args"]:
        host, _, cap = arg.partition("=")
        assert host in exp["hosts"] and cap in exp["hosts"][host]["captures"], arg
    for cap, info in exp["captures"].items():
        assert (folder / cap).is_file(), cap
        assert set(info["classes"]) <= set(CLASS_NAMES), sorted(set(info["classes"]) - set(CLASS_NAMES))
        assert all(n > 0 for n in info["classes"].values()), "only non-zero counts are listed"
        assert sum(info["classes"].values()) == info["frames"], cap
    assert exp["evidence"], "every scenario cites decisive frames"
    for ev in exp["evidence"]:
        assert ev["capture"] in exp["captures"]
        assert 1 <= ev["frame"] <= exp["captures"][ev["capture"]]["frames"]
        assert exp["captures"][ev["capture"]]["classes"].get(ev["klass"], 0) > 0
    assert set(exp["clock_offsets"]) == set(exp["hosts"])
    on_disk = {p.name for p in folder.glob("*.pcap")}
    assert on_disk == set(exp["captures"]), "every capture in the folder is described"


@pytest.mark.parametrize("name", MTU_SCENARIOS)
def test_mtu_facts(name: str) -> None:
    facts = load(name)["facts"]
    assert facts["path_mtu"] == 1454
    assert facts["overlay_mtu"] == 1410
    outer = 40 if name == "ipv6-ptb" else 20
    assert facts["heartbeat_ip_len"] == 1410 + 30 + outer
    assert facts["heartbeat_frame_len"] == facts["heartbeat_ip_len"] + 14


def test_shifted_copy_is_the_original_moved_by_the_stated_offset() -> None:
    exp = load("p2-router")
    (copy, meta), = exp["shifted_copies"].items()
    original = pcap_timestamps(SAMPLES / "p2-router" / meta["of"])
    shifted = pcap_timestamps(SAMPLES / "p2-router" / copy)
    assert len(original) == len(shifted) > 0
    offsets = {s - o for o, s in zip(original, shifted, strict=True)}
    assert offsets == {round(meta["offset_s"] * 1_000_000)}
    assert exp["captures"][copy] == exp["captures"][meta["of"]]


def test_frame_counts_match_wireshark_tools() -> None:
    """Frame counts as the Wireshark suite reads them: capinfos in one run, else tshark per file."""
    tshark = need_tool("tshark")
    expected = {}
    for name in SCENARIOS:
        for cap, info in load(name)["captures"].items():
            expected[str(SAMPLES / name / cap)] = info["frames"]
    counted = {}
    capinfos = shutil.which("capinfos")
    if capinfos:
        out = subprocess.run([capinfos, "-c", "-M", "-T", "-r", *expected], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        for line in out.splitlines():
            path, _, frames = line.rpartition("\t")
            counted[path] = int(frames)
    else:
        for path in expected:
            out = subprocess.run([tshark, "-n", "-r", path, "-T", "fields", "-e", "frame.number"],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
            counted[path] = len(out.splitlines())
    assert counted == expected


def test_demo_classes_match_tshark_oracle() -> None:
    """Re-derive p2-router's class counts from tshark (the oracle the lab used)."""
    need_tool("tshark")
    sys.path.insert(0, str(SAMPLES / "lab"))
    try:
        import oracle
    finally:
        sys.path.pop(0)
    exp = load("p2-router")
    for cap in ("host-a-eth0.pcap", "host-a-lo.pcap", "router-left.pcap"):
        frames = oracle.tshark_frames(SAMPLES / "p2-router" / cap)
        assert oracle.class_counts(frames) == exp["captures"][cap]["classes"], cap
