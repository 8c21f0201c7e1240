"""analyze on other projects' real captures: no crash, a verdict, no rule that could not run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import real_captures
from support.writers import write_pcap

import weavepcap
from weavepcap.rules import RULES_BY_ID

CAPTURES = real_captures()


@pytest.mark.skipif(not CAPTURES, reason="../shared/real-captures is not beside the checkout")
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_real_capture_gets_a_verdict(path: Path) -> None:
    a = weavepcap.analyze([str(path)])
    assert a.verdict.root_cause in RULES_BY_ID
    # None of them carries Weave traffic: faults about Weave must not be invented.
    assert a.verdict.root_cause == "no-weave-traffic"
    assert not [c for c in a.caveats if "could not run" in c]
    assert a.to_json()


def test_empty_capture_gets_a_verdict(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    write_pcap(empty, [])
    a = weavepcap.analyze([str(empty)])
    assert a.verdict.root_cause == "no-weave-traffic"
    assert a.events.empty and a.to_dict()["timeline"] == []
