"""Weave TCP 6783 control stream: handshakes, message boundaries across segments and chunks, bounded state."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.build import control_message, ethernet, features_body, ipv4, ipv6, tcp

from tests.test_decode_equivalence import assert_same_columns
from weavepcap.decode import DecodeState, decode_chunk
from weavepcap.io.records import chunk_from_frames
from weavepcap.settings import Settings

DIALER = ("10.0.1.2", 40001)
LISTENER = ("10.0.2.2", 6783)
FEATURES = {
    "PeerNameFlavour": "mac",
    "Name": "0a:aa:00:00:0a:01",
    "NickName": "host-a",
    "ShortID": "161",
    "ConnID": "12345678901234",
    "Overlays": "fastdp sleeve",
}
HANDSHAKE_PLAIN = b"weave\x01\x02\x00"
PMTU_VERIFIED = bytes.fromhex("00000005070103059e")
GOSSIP = control_message(b"\x04\x0b\x0c\x00\x08topology" + b"\x09\x06\x00\xfa" + bytes(6))


def segments_to_frames(
    segments: list[bytes], *, seq: int = 1000, reverse: bool = False, skip: tuple[int, ...] = ()
) -> list[bytes]:
    """One frame per segment of one direction, sequence numbers advancing; `skip` leaves segments out."""
    (src, sport), (dst, dport) = (LISTENER, DIALER) if reverse else (DIALER, LISTENER)
    frames = []
    for index, payload in enumerate(segments):
        if index not in skip:
            frames.append(
                ethernet(ipv4(tcp(payload, sport=sport, dport=dport, seq=seq), src=src, dst=dst, proto=6))
            )
        seq = (seq + len(payload)) % (1 << 32)
    return frames


def decode(frames: list[bytes], state: DecodeState | None = None) -> dict[str, np.ndarray]:
    chunk = chunk_from_frames(frames)
    assert_same_columns(chunk)
    return decode_chunk(chunk, Settings(), state or DecodeState()).columns


def test_control_segments_over_plain_ipv4_and_ipv6_skip_the_per_packet_path() -> None:
    frames = segments_to_frames([HANDSHAKE_PLAIN, control_message(features_body(FEATURES))])
    frames.append(
        ethernet(
            ipv6(tcp(control_message(b"\x00"), sport=40002, dport=6783), next_header=6), ethertype=0x86DD
        )
    )
    decoded = decode_chunk(chunk_from_frames(frames), Settings(), DecodeState())
    assert decoded.slow_frames == 0
    kinds = decoded.columns["ctl_msg"].tolist()
    assert kinds == ["handshake", "features", "heartbeat"]  # the v6 one: no handshake seen, resynced
    assert decoded.columns["ctl_nickname"][1] == "host-a"


def test_plain_handshake_split_over_segments() -> None:
    features = control_message(features_body(FEATURES))
    c = decode(segments_to_frames([b"weave\x01\x02", b"\x00", features, control_message(b"\x00")]))
    assert c["ctl_msg"].tolist() == ["handshake", "handshake", "features", "heartbeat"]
    assert c["ctl_proto_max"].tolist() == [2, -1, -1, -1] and c["ctl_encrypted"].tolist() == [-1, 0, -1, -1]
    assert (c["ctl_peer_name"][2], c["ctl_nickname"][2], c["ctl_short_id"][2]) == (
        "0a:aa:00:00:0a:01",
        "host-a",
        161,
    )


def test_features_in_the_handshake_segment() -> None:
    c = decode(segments_to_frames([HANDSHAKE_PLAIN + control_message(features_body(FEATURES))]))
    assert c["ctl_msg"][0] == "handshake" and c["ctl_encrypted"][0] == 0 and c["ctl_short_id"][0] == 161


def test_encrypted_connection() -> None:
    key = bytes(range(32))
    secretbox = control_message(bytes(17))  # an encrypted TCP heartbeat: 16-byte tag + 1
    c = decode(segments_to_frames([b"weave\x01\x02\x01" + key, control_message(bytes(300)), secretbox]))
    assert c["ctl_msg"].tolist() == ["handshake", "encrypted", "encrypted"]
    assert c["ctl_encrypted"][0] == 1 and c["ctl_peer_name"][1] == ""
    assert c["l4_payload_len"].tolist() == [40, 304, 21]


def test_message_split_across_segments_keeps_the_boundaries() -> None:
    features = control_message(features_body(FEATURES))
    c = decode(
        segments_to_frames(
            [HANDSHAKE_PLAIN, features[:30], features[30:] + PMTU_VERIFIED[:2], PMTU_VERIFIED[2:], GOSSIP]
        )
    )
    assert c["ctl_msg"].tolist() == ["handshake", "features", "data", "data", "gossip"]
    # the PMTU message's length prefix was cut in two: carried over, its body is read in the 4th segment
    assert c["ctl_pmtu"].tolist() == [-1, -1, -1, 1438, -1]


def test_two_messages_in_one_segment() -> None:
    c = decode(
        segments_to_frames(
            [
                HANDSHAKE_PLAIN,
                control_message(features_body(FEATURES)),
                control_message(b"\x00") + PMTU_VERIFIED,
            ]
        )
    )
    assert c["ctl_msg"][2] == "heartbeat" and c["ctl_pmtu"][2] == 1438 and c["ctl_overlay_subtag"][2] == 3


def test_capture_started_mid_connection_resyncs_on_whole_messages() -> None:
    c = decode(
        segments_to_frames([b"tail of an older message", control_message(b"\x00"), PMTU_VERIFIED, GOSSIP])
    )
    assert c["ctl_msg"].tolist() == ["data", "heartbeat", "overlay_ctl", "gossip"]
    assert c["ctl_pmtu"][2] == 1438


def test_lost_segment_then_resync() -> None:
    segments = [HANDSHAKE_PLAIN, control_message(features_body(FEATURES)), GOSSIP, control_message(b"\x00")]
    c = decode(segments_to_frames(segments, skip=(1,)))
    assert c["ctl_msg"].tolist() == ["handshake", "gossip", "heartbeat"]


def test_retransmission_is_named_like_the_original() -> None:
    features = control_message(features_body(FEATURES))
    frames = segments_to_frames([HANDSHAKE_PLAIN, features, control_message(b"\x00"), PMTU_VERIFIED, GOSSIP])
    # the heartbeat and the PMTU message again, then a resend that starts inside the features map
    inside = ethernet(
        ipv4(
            tcp(features[10:], sport=DIALER[1], dport=6783, seq=1000 + 8 + 10),
            src=DIALER[0],
            dst=LISTENER[0],
            proto=6,
        )
    )
    c = decode(frames + [frames[2], frames[3], inside, frames[4]])
    assert c["ctl_msg"].tolist() == [
        "handshake",
        "features",
        "heartbeat",
        "overlay_ctl",
        "gossip",
        "heartbeat",
        "overlay_ctl",
        "data",
        "gossip",
    ]
    assert c["ctl_pmtu"].tolist()[6] == 1438


def test_both_directions_and_state_across_chunks() -> None:
    a = segments_to_frames(
        [HANDSHAKE_PLAIN, control_message(features_body(FEATURES)), control_message(b"\x00")]
    )
    b = segments_to_frames(
        [b"weave\x01\x02\x01" + bytes(32), control_message(bytes(40))], seq=7, reverse=True
    )
    state = DecodeState()
    first = decode_chunk(chunk_from_frames([a[0], b[0], a[1]]), Settings(), state).columns
    second = decode_chunk(chunk_from_frames([b[1], a[2]], first_frame=4), Settings(), state).columns
    assert first["ctl_msg"].tolist() == ["handshake", "handshake", "features"]
    assert second["ctl_msg"].tolist() == ["encrypted", "heartbeat"]
    assert first["ctl_encrypted"].tolist() == [0, 1, -1]


def test_version_1_stream_is_not_followed() -> None:
    c = decode(segments_to_frames([b"weave\x01\x01", b"\x0e\xff\x81gob stream"]))
    assert c["ctl_msg"].tolist() == ["handshake", "data"] and c["ctl_proto_max"][0] == 1


def test_untrusted_nickname_is_kept_as_lossy_text() -> None:
    body = features_body({"Name": "0a:aa:00:00:0a:01", "NickName": "x", "ShortID": "99999999999"})
    body = body.replace(b"\x01x", b"\x03\xff<b")
    c = decode(segments_to_frames([HANDSHAKE_PLAIN + control_message(body)]))
    assert c["ctl_nickname"][0] == "\ufffd<b" and c["ctl_short_id"][0] == -1  # out of range: not a short id


def test_connection_table_is_bounded() -> None:
    state = DecodeState(max_connections=2)
    frames = [
        ethernet(ipv4(tcp(HANDSHAKE_PLAIN, sport=40000 + k, dport=6783), src=f"10.0.0.{k}", proto=6))
        for k in range(1, 6)
    ]
    decode_chunk(chunk_from_frames(frames), Settings(), state)
    assert len(state.control.directions) == 2 and state.evicted_connections == 3


def test_segments_without_payload_stay_on_the_fast_path() -> None:
    frames = [
        ethernet(ipv4(tcp(sport=40001, dport=6783, flags=0x02), proto=6)),
        ethernet(ipv4(tcp(sport=6783, dport=40001, flags=0x04), proto=6)),
    ]
    decoded = decode_chunk(chunk_from_frames(frames), Settings(), DecodeState())
    assert decoded.slow_frames == 0 and decoded.columns["ctl_msg"].tolist() == ["", ""]
    assert decoded.columns["tcp_flags"].tolist() == [0x02, 0x04]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["heartbeat", "gossip", "overlay_ctl"]), max_size=12), st.data())
def test_any_segmentation_keeps_every_message_boundary(kinds: list[str], data: st.DataObject) -> None:
    """Cut one plain stream anywhere: a segment that starts on a message boundary names that message."""
    bodies = {"heartbeat": control_message(b"\x00"), "gossip": GOSSIP, "overlay_ctl": PMTU_VERIFIED}
    stream = HANDSHAKE_PLAIN + control_message(features_body(FEATURES))
    starts = {0: "handshake", len(HANDSHAKE_PLAIN): "features"}
    for kind in kinds:
        starts[len(stream)] = kind
        stream += bodies[kind]
    inner = data.draw(st.sets(st.integers(8, len(stream) - 1), max_size=15))
    cuts = sorted({0, *inner, len(stream)})
    segments = [stream[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    c = decode(segments_to_frames(segments))
    # naming a message takes its length prefix and first body byte (the handshake: its 5-byte magic)
    expected = [starts.get(a, "data") if b - a >= 5 else "data" for a, b in zip(cuts, cuts[1:], strict=False)]
    assert c["ctl_msg"].tolist() == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(17, 80), max_size=10), st.data())
def test_any_segmentation_of_an_encrypted_stream(sizes: list[int], data: st.DataObject) -> None:
    """Encrypted: key bytes stay handshake, every message start (with its first body byte) is `encrypted`."""
    header = b"weave\x01\x02\x01" + bytes(range(32))
    stream = header
    starts = set()
    for size in [200, *sizes]:  # the features map first, then secretboxes
        starts.add(len(stream))
        stream += control_message(bytes([size % 251]) * size)
    inner = data.draw(st.sets(st.integers(7, len(stream) - 1), max_size=15))
    cuts = sorted({0, *inner, len(stream)})
    c = decode(segments_to_frames([stream[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]))
    expected = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a < len(header):
            expected.append("handshake")
        else:
            expected.append("encrypted" if a in starts and b - a >= 5 else "data")
    assert c["ctl_msg"].tolist() == expected
