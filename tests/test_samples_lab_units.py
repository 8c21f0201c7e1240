"""The lab's pure parts without root: gob features, sleeve chains, the oracle's rules, the pcap clock shifter."""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import SAMPLES
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def lab() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(SAMPLES / "lab"))
    try:
        import oracle
        import pcapshift
        import peer

        yield {"peer": peer, "oracle": oracle, "pcapshift": pcapshift}
    finally:
        sys.path.remove(str(SAMPLES / "lab"))


def test_features_start_with_the_documented_gob_pattern(lab: dict[str, ModuleType]) -> None:
    peer = lab["peer"]
    body = peer.encode_features([("Name", "0a:aa:00:00:0a:01"), ("Overlays", "fastdp sleeve")])
    # weave-wire-format.md §2.2: map[string]string type definition, then `<len> ff 82 00 <count>`
    assert body.startswith(bytes.fromhex("0eff81040102ff8200010c010c0000"))
    assert body[16:20] == bytes.fromhex("ff820002")
    assert b"Overlays" in body and b"fastdp sleeve" in body


@given(st.lists(st.tuples(st.text(min_size=1, max_size=40), st.text(max_size=300)), max_size=10,
                unique_by=lambda kv: kv[0]))
def test_features_round_trip(pairs: list[tuple[str, str]]) -> None:
    sys.path.insert(0, str(SAMPLES / "lab"))
    try:
        import peer
    finally:
        sys.path.remove(str(SAMPLES / "lab"))
    assert peer.decode_features(peer.encode_features(pairs)) == dict(pairs)


def test_gob_uint_boundaries(lab: dict[str, ModuleType]) -> None:
    peer = lab["peer"]
    assert peer.gob_uint(127) == b"\x7f"
    assert peer.gob_uint(128) == b"\xff\x80"
    assert peer.gob_uint(300) == b"\xfe\x01\x2c"
    for value in (0, 127, 128, 255, 256, 65535, 1 << 40):
        assert peer.read_gob_uint(peer.gob_uint(value), 0) == (value, len(peer.gob_uint(value)))


def test_sleeve_chain_must_consume_the_payload_exactly(lab: dict[str, ModuleType]) -> None:
    oracle = lab["oracle"]
    sender, src, dst = bytes(6), b"\x0a" * 6, b"\x0b" * 6
    heartbeat = bytes(14) + b"\x01" * 8
    payload = sender + src + dst + struct.pack(">H", 22) + heartbeat
    assert oracle.sleeve_chain(payload.hex()) == [heartbeat]
    assert oracle.sleeve_chain((payload + b"\x00").hex()) is None  # trailing byte: not a chain
    assert oracle.sleeve_chain(payload[:-1].hex()) is None  # truncated frame


def test_message_framing(lab: dict[str, ModuleType]) -> None:
    peer = lab["peer"]
    assert peer.message(peer.TAG_HEARTBEAT) == bytes.fromhex("0000000100")
    assert peer.message(peer.TAG_OVERLAY, bytes([0, 0])) == bytes.fromhex("00000003070000")
    assert peer.message(peer.TAG_OVERLAY, bytes([1, 3]) + struct.pack(">H", 1438)) == bytes.fromhex("0000000507010305 9e".replace(" ", ""))


def write_pcap(path: Path, stamps: list[tuple[int, int]], nano: bool = False) -> None:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for sec, frac in stamps:
        frame = bytes(60)
        out += struct.pack("<IIII", sec, frac, len(frame), len(frame)) + frame
    path.write_bytes(out)


@pytest.mark.parametrize("nano", [False, True])
def test_pcapshift_moves_every_timestamp_and_carries(lab: dict[str, ModuleType], tmp_path: Path, nano: bool) -> None:
    ticks = 1_000_000_000 if nano else 1_000_000
    src, dst = tmp_path / "a.pcap", tmp_path / "b.pcap"
    stamps = [(100, 0), (100, ticks - 1), (101, ticks // 2)]
    write_pcap(src, stamps, nano)
    assert lab["pcapshift"].shift(src, dst, 2.5) == 3
    data = dst.read_bytes()
    assert data[:24] == src.read_bytes()[:24]
    got, pos = [], 24
    while pos < len(data):
        sec, frac, incl, _ = struct.unpack("<IIII", data[pos : pos + 16])
        got.append(sec * ticks + frac)
        pos += 16 + incl
    assert got == [s * ticks + f + ticks * 5 // 2 for s, f in stamps]


def test_pcapshift_refuses_what_is_not_a_pcap(lab: dict[str, ModuleType], tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))  # pcapng
    with pytest.raises(ValueError, match="not a classic pcap"):
        lab["pcapshift"].shift(bad, tmp_path / "y.pcap", 1.0)
