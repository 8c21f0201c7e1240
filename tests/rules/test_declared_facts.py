"""Each finding carries only the facts its rule declares: no rule fails on any sample, none reports another's facts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import weavepcap
from weavepcap.detect.base import Timeline
from weavepcap.io.records import CaptureSpec
from weavepcap.rules import RULES
from weavepcap.rules.base import Context
from weavepcap.rules.tx_stall_after_pmtu_probe import RULE as TX_STALL
from weavepcap.settings import DEFAULT_SETTINGS

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
EXPECTED = sorted(SAMPLES.glob("*/expected.json"))
PATH_FACTS = ("path_mtu", "heartbeat_ip_len", "heartbeat_frame_len", "overlay_mtu")


def analysis(expected: Path) -> weavepcap.Analysis:
    exp = json.loads(expected.read_text(encoding="utf-8"))
    specs = [CaptureSpec.parse(a) for a in exp["analyze_args"]]
    return weavepcap.analyze([CaptureSpec(path=str(expected.parent / s.path), host=s.host) for s in specs])


@pytest.mark.parametrize("expected", EXPECTED, ids=[p.parent.name for p in EXPECTED])
def test_every_rule_runs_and_reports_only_declared_facts(expected: Path) -> None:
    a = analysis(expected)
    declared = {r.id: set(r.facts) for r in RULES}
    assert not [c for c in a.caveats if "could not run" in c]
    for f in a.findings:
        assert set(f.facts) <= declared[f.rule], (f.rule, sorted(set(f.facts) - declared[f.rule]))


def test_tx_stall_does_not_report_path_facts() -> None:
    a = analysis(SAMPLES / "p1-tx-stall" / "expected.json")
    top = a.findings[0]
    assert top.rule == TX_STALL.id
    assert not set(top.facts) & set(PATH_FACTS)
    assert not set(TX_STALL.facts) & set(PATH_FACTS)
    assert any(p.get("path_mtu_low") for p in a.to_dict()["paths"])  # the path facts are in `paths`


def test_an_undeclared_fact_is_a_rule_bug() -> None:
    ctx = Context(tl=Timeline(packets=pd.DataFrame(), hosts={}, settings=DEFAULT_SETTINGS), events=pd.DataFrame())
    with pytest.raises(ValueError, match="does not declare: path_mtu"):
        ctx.finding(TX_STALL, confidence=0.5, message="m", facts={"host": "a", "path_mtu": 1500}, evidence=[])
    ok = ctx.finding(TX_STALL, confidence=0.5, message="m", facts={"host": "a"}, evidence=[])
    assert ok.facts == {"host": "a"}
