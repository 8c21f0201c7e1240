"""Every sample folder analysed as a user would drop it in: all captures, routers and taps included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES

SCENARIOS = sorted(p.parent for p in SAMPLES.glob("*/expected.json"))


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_whole_folder_gives_the_expected_root_cause(folder: Path) -> None:
    import weavepcap

    expected = json.loads((folder / "expected.json").read_text())
    # No HOST= names: hosts come from the file names, and router/switch captures are observers.
    captures = sorted(str(p) for p in folder.glob("*.pcap") if "shifted" not in p.name)
    analysis = weavepcap.analyze(captures)
    assert analysis.verdict.root_cause == expected["root_cause"]


def test_router_capture_is_not_a_silent_peer() -> None:
    import weavepcap

    folder = SAMPLES / "healthy-fastdp"
    analysis = weavepcap.analyze([str(folder / "router-left.pcap"), str(folder / "host-a-eth0.pcap"),
                                  str(folder / "host-b-eth0.pcap")])
    rules = {f.rule for f in analysis.findings}
    assert "peer-silent" not in rules
    assert analysis.verdict.root_cause == "healthy"


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_series_start_at_the_analysis_start(folder: Path) -> None:
    import weavepcap

    captures = sorted(str(p) for p in folder.glob("*.pcap"))  # the shifted copy too: clock offsets apply
    doc = weavepcap.analyze(captures).to_dict()
    rates = doc["series"]["rates"]
    assert rates and min(r["second"] for r in rates) == 0
    assert min(p["t"] for p in doc["series"]["packets"]) >= 0
