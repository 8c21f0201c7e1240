"""Re-record a subset of the incident lab and check the fresh captures still match the committed samples."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, need, need_root_netns, need_tool

# One MTU fault with a router (the README demo), a transmit stall, a firewall drop: about 10 s each.
RERUN = ("p2-router", "p1-tx-stall", "fastdp-port-blocked")
LAB_TIMEOUT_S = 240
KEY_FACTS = ("path_mtu", "heartbeat_ip_len", "heartbeat_frame_len", "overlay_mtu", "sleeve_mtu_verified",
             "pmtu_discovery_emsgsize", "tx_stall_applied")

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.tshark]


def present(exp: dict[str, Any], capture: str) -> set[str]:
    return set(exp["captures"][capture]["classes"])


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_root_netns()
    for tool in ("tcpdump", "nft", "tshark", "bridge"):
        need_tool(tool)
    need(Path("/proc/sys/net").is_dir(), "needs /proc/sys/net for namespace sysctls")
    out = tmp_path_factory.mktemp("lab")
    lab = subprocess.Popen(
        [sys.executable, str(SAMPLES / "lab" / "lab.py"), "--only", *RERUN, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _, err = lab.communicate(timeout=LAB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        lab.kill()
        lab.communicate(timeout=10)
        raise
    assert lab.returncode == 0, err[-2000:]
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert f"wpl-{lab.pid}-" not in leftover, f"the lab left namespaces behind: {leftover}"
    return out


def load(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", RERUN)
def test_rerun_keeps_classes_facts_and_root_cause(fresh: Path, name: str) -> None:
    committed, new = load(SAMPLES / name), load(fresh / name)
    assert new["root_cause"] == committed["root_cause"]
    assert set(new["captures"]) == set(committed["captures"])
    for capture in committed["captures"]:
        assert present(new, capture) == present(committed, capture), capture
    for key in KEY_FACTS:
        if key in committed["facts"]:
            assert new["facts"].get(key) == committed["facts"][key], key
    # the decisive evidence exists again (frame numbers may move by a few)
    assert [(e["capture"], e["klass"]) for e in new["evidence"]] == [
        (e["capture"], e["klass"]) for e in committed["evidence"]]


@pytest.mark.parametrize("name", RERUN)
def test_rerun_through_weavepcap(fresh: Path, name: str) -> None:
    """weavepcap's own scan and verdict on the fresh captures agree with the tshark oracle."""
    if importlib.util.find_spec("weavepcap.scan") is None:
        pytest.skip("weavepcap.scan is not built yet")
    from weavepcap.io.records import CaptureSpec
    from weavepcap.scan import scan_capture
    from weavepcap.settings import DEFAULT_SETTINGS

    exp = load(fresh / name)
    for capture in exp["captures"]:
        if name == "p1-tx-stall" and capture != "host-a-lo.pcap":
            continue  # retransmitted heartbeats: see samples/README.md (class counting rules)
        result = scan_capture(CaptureSpec(path=str(fresh / name / capture)), DEFAULT_SETTINGS, keep="none")
        got = {k for k, v in result.summary.classes.items() if v["frames"]}
        assert got == present(exp, capture), capture
    if importlib.util.find_spec("weavepcap.api") is None:
        return
    from weavepcap.api import analyze

    args = [CaptureSpec(path=str(fresh / name / CaptureSpec.parse(a).path), host=CaptureSpec.parse(a).host)
            for a in exp["analyze_args"]]
    assert analyze(args).verdict.root_cause == exp["root_cause"]


def test_lab_cleans_up_stale_namespaces_by_prefix_only() -> None:
    need_root_netns()
    sys.path.insert(0, str(SAMPLES / "lab"))
    try:
        import labnet
    finally:
        sys.path.pop(0)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=30)
    stale = f"wpl-{finished.pid}-t-stale"  # its creator has exited
    alive = f"wpl-{os.getpid()}-t-alive"  # a run still going on (this one)
    other = "wplx-not-ours"
    names = (stale, alive, other)
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        removed = labnet.delete_stale_namespaces()
        remaining = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        assert stale in removed and stale not in remaining
        assert alive in remaining and other in remaining
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
