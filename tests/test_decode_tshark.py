"""Per-frame agreement with tshark (the reference dissector) on what both read from the wire."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLES, need_tool, real_captures
from weavepcap.decode import DecodeState, decode_chunk
from weavepcap.io import open_capture
from weavepcap.settings import Settings

# The fields the issue names for the comparison. Transport fields are not compared on IP-in-IP
# frames: there we read the inner packet's transport (documented), tshark's column filler does not.
COMPARED = (
    "ip_version",
    "ip_src",
    "ip_dst",
    "ip_id",
    "ip_mf",
    "ip_frag_off",
    "ip_proto",
    "vxlan_vni",
    "tun_type",
)
TRANSPORT = (
    "sport",
    "dport",
    "icmp_type",
    "icmp_code",
    "icmp_mtu",
    "q_ip_src",
    "q_ip_dst",
    "q_sport",
    "q_dport",
)


def _captures() -> list[Path]:
    """Every real capture, and one capture per sample scenario (tshark takes ~0.3 s a file)."""
    samples = []
    for scenario in sorted(p for p in SAMPLES.glob("*") if p.is_dir()) if SAMPLES.is_dir() else []:
        eth = sorted(scenario.glob("*eth0.pcap")) or sorted(scenario.glob("*.pcap"))
        samples += eth[:1]
    return real_captures() + samples


def _native(path: Path, settings: Settings) -> dict[str, np.ndarray]:
    state = DecodeState()
    parts = [
        decode_chunk(chunk, settings, state).columns for chunk in open_capture(str(path), settings).chunks()
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}


@pytest.mark.tshark
@pytest.mark.parametrize(
    "path",
    _captures(),
    ids=lambda p: p.name if p.parent.name == "real-captures" else f"{p.parent.name}/{p.name}",
)
def test_agrees_with_tshark(path: Path) -> None:
    need_tool("tshark")
    from weavepcap.tshark import iter_tshark_columns

    settings = Settings()
    ours = _native(path, settings)
    parts = list(iter_tshark_columns(path, settings))
    theirs = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}
    assert len(ours.get("frame", [])) == len(theirs.get("frame", []))
    if not ours:
        return
    tunnelled = np.isin(ours["ip_proto"], (4, 41))
    for name in COMPARED + TRANSPORT:
        differ = ours[name] != theirs[name]
        if name in TRANSPORT:
            differ &= ~tunnelled
        frames = ours["frame"][differ][:5].tolist()
        assert not differ.any(), (
            f"{name}: frames {frames} ours {ours[name][differ][:5]} tshark {theirs[name][differ][:5]}"
        )
