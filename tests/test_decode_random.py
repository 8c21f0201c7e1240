"""Property tests: random and mutated frames never break decoding, and both paths agree on them."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.build import (
    control_message,
    ethernet,
    fastdp_heartbeat_frame,
    features_body,
    frag_needed,
    geneve,
    icmp,
    ipv4,
    ipv6,
    ipv6_ext,
    ipv6_fragment,
    null_loopback,
    packet_too_big,
    sleeve,
    sleeve_heartbeat_frame,
    sll,
    sll2,
    tcp,
    udp,
    vxlan,
)

from tests.test_decode_equivalence import assert_same_columns
from weavepcap.decode import DecodeState, decode_chunk
from weavepcap.io.records import chunk_from_frames
from weavepcap.settings import Settings

LINKTYPES = (1, 113, 276, 101, 12, 228, 229, 0, 108, 147)
_HB = ipv4(udp(vxlan(fastdp_heartbeat_frame(7, 200), 0x5005), sport=50000, dport=6784))
_SLEEVE_HB = ipv4(udp(sleeve([sleeve_heartbeat_frame(9)]), sport=6783, dport=6783))

# (link type, frame): one of each shape the decoder knows, to be mutated
CORPUS: list[tuple[int, bytes]] = [
    (1, ethernet(_HB)),
    (1, ethernet(_HB, tags=((0x8100, 3),))),
    (1, ethernet(_HB, tags=((0x88A8, 3), (0x8100, 4)))),
    (1, ethernet(_SLEEVE_HB)),
    (1, ethernet(ipv4(udp(sleeve([b"a" * 20, b"b" * 30]), sport=6783, dport=6783)))),
    (1, ethernet(ipv4(udp(geneve(ethernet(ipv4(icmp(8, 0), proto=1)), 3, options=b"\1" * 4), dport=6081)))),
    (1, ethernet(ipv4(frag_needed(_HB[:60], 1400), proto=1))),
    (1, ethernet(ipv4(udp(b"x" * 30, sport=6783, dport=6783)[:24], mf=True, df=False, ident=4))),
    (1, ethernet(ipv4(b"x" * 16, frag_off=24, df=False, ident=4))),
    (1, ethernet(ipv4(udp(b"opt"), options=b"\x94\x04\0\0"))),
    (1, ethernet(ipv4(tcp(b"weave\x01\x02\x00", dport=6783), proto=6))),
    (
        1,
        ethernet(
            ipv4(tcp(control_message(features_body({"Name": "n", "ShortID": "12"})), sport=6783), proto=6)
        ),
    ),
    (1, ethernet(ipv4(tcp(bytes.fromhex("00000005070103059e"), dport=6783), proto=6))),
    (1, ethernet(ipv4(ipv6(packet_too_big(ipv6(udp(b"q" * 50))[:80], 1280), next_header=58), proto=41))),
    (
        1,
        ethernet(
            ipv6(ipv6_ext(44) + ipv6_fragment(17, more=True) + udp(b"f" * 16), next_header=60),
            ethertype=0x86DD,
        ),
    ),
    (
        1,
        ethernet(
            ipv6(packet_too_big(ipv4(udp(vxlan(bytes(14), 1), dport=6784)), 1400), next_header=58),
            ethertype=0x86DD,
        ),
    ),
    (113, sll(_HB)),
    (276, sll2(_SLEEVE_HB)),
    (101, _HB),
    (229, ipv6(udp(b"v6"))),
    (1, ethernet(ipv6(tcp(b"weave\x01\x02\x00", dport=6783), next_header=6), ethertype=0x86DD)),
    (1, ethernet(ipv6(icmp(135, 0, bytes(4), bytes(16)), next_header=58), ethertype=0x86DD)),
    (1, ethernet(ipv6(udp(vxlan(fastdp_heartbeat_frame(3, 100), 9), dport=6784)), ethertype=0x86DD)),
    (0, null_loopback(_HB, 2)),
    (108, null_loopback(ipv6(udp(b"")), 24, big_endian=True)),
]


@st.composite
def mutated_frame(draw: st.DrawFn) -> tuple[int, bytes]:
    linktype, frame = draw(st.sampled_from(CORPUS))
    data = bytearray(frame)
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        data = data[:cut]
    if draw(st.integers(0, 9)) == 0:
        linktype = draw(st.sampled_from(LINKTYPES))
    return linktype, bytes(data)


random_frame = st.tuples(st.sampled_from(LINKTYPES), st.binary(max_size=120))


# a long last frame makes the fast path's unchecked 8-byte reads legal for every other frame: with it the
# examples exercise those reads, without it the bounds-checked ones
FILLER = (1, ethernet(bytes(600), ethertype=0x0806))


def _check(frames: list[tuple[int, bytes]]) -> None:
    frames = frames + [FILLER] if len(frames) % 2 else frames
    chunk = chunk_from_frames([f for _, f in frames], linktype=[lt for lt, _ in frames])
    assert_same_columns(chunk)  # includes: neither path recorded a decoder error


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_frame(), min_size=1, max_size=30))
def test_mutated_frames_decode_the_same_both_ways(frames: list[tuple[int, bytes]]) -> None:
    _check(frames)


@settings(max_examples=100, deadline=None)
@given(st.lists(random_frame, min_size=1, max_size=30))
def test_random_bytes_decode_the_same_both_ways(frames: list[tuple[int, bytes]]) -> None:
    _check(frames)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=80)), min_size=1, max_size=20))
def test_random_control_segments_never_break_the_stream_tracker(segments: list[tuple[int, bytes]]) -> None:
    frames = [
        ethernet(ipv4(tcp(payload, sport=40000, dport=6783, seq=seq), proto=6)) for seq, payload in segments
    ]
    state = DecodeState(max_connections=2)
    decoded = decode_chunk(chunk_from_frames(frames), Settings(), state)
    assert decoded.errors == []
    assert len(state.control.directions) <= 2
    kinds = set(decoded.columns["ctl_msg"].tolist())
    assert kinds <= {"", "handshake", "features", "heartbeat", "gossip", "overlay_ctl", "data", "encrypted"}
