"""Defragmenter on hand-made fragment rows: complete, overlap, conflict, timeout, incomplete, evicted, IPv6, chunks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from weavepcap import defrag, schema
from weavepcap.defrag import Defragmenter, FragmentAnnotations, fragment_mask
from weavepcap.settings import Settings

S = Settings()


def frag(frame: int, off: int, data: bytes, *, mf: bool, ip_id: int = 7, ts: int | None = None, version: int = 4,
         src: str = "10.0.0.1", sport: int = -1, dport: int = -1, udp_len: int = -1) -> dict[str, object]:
    hdr = 20 if version == 4 else 48
    return dict(frame=frame, ts_ns=frame * 1000 if ts is None else ts, ip_version=version, ip_src=src, ip_dst="10.0.0.2",
                ip_id=ip_id, ip_proto=17, ip_mf=mf, ip_frag_off=off, ip_hdr_len=hdr, ip_len=hdr + len(data),
                sport=sport, dport=dport, udp_len=udp_len, _data=data)


def chunk(*rows: dict[str, object]) -> tuple[dict[str, np.ndarray], dict[int, bytes]]:
    cols = schema.empty_columns(len(rows))
    payloads: dict[int, bytes] = {}
    for i, row in enumerate(rows):
        for name, value in row.items():
            if name == "_data":
                payloads[int(row["frame"])] = value  # type: ignore[assignment]
            else:
                cols[name][i] = value
    return cols, payloads


def by_frame(ann: FragmentAnnotations) -> dict[int, tuple[int, int, str]]:
    return {int(f): (int(t), int(n), str(s)) for f, t, n, s in zip(ann.frame, ann.frag_train, ann.reasm_len,
                                                                   ann.reasm_status, strict=True)}


def run(*rows: dict[str, object], settings: Settings = S) -> dict[int, tuple[int, int, str]]:
    d = Defragmenter(settings)
    ann = [d.feed(*chunk(*rows)), d.finish()]
    assert d.open_trains == 0 and d.buffered_bytes == 0
    return by_frame(FragmentAnnotations.concat(ann))


def test_complete_train_out_of_order() -> None:
    out = run(frag(1, 16, b"b" * 16, mf=True), frag(2, 32, b"c" * 4, mf=False), frag(3, 0, b"a" * 16, mf=True))
    assert out == {1: (1, 56, "complete"), 2: (1, 56, "complete"), 3: (1, 56, "complete")}


def test_identical_overlap_is_reassembled() -> None:
    out = run(frag(1, 0, b"a" * 16, mf=True), frag(2, 0, b"a" * 16, mf=True), frag(3, 16, b"b" * 8, mf=False),
              frag(4, 16, b"b" * 8, mf=False))  # a duplicate last fragment after completion joins the train
    assert {v for v in out.values()} == {(1, 44, "overlap")}


def test_conflicting_overlap_is_not_guessed() -> None:
    out = run(frag(1, 0, b"a" * 16, mf=True), frag(2, 8, b"X" * 16, mf=False), frag(3, 0, b"a" * 8, mf=True))
    assert {v for v in out.values()} == {(1, -1, "conflict")}


def test_data_past_the_end_is_a_conflict() -> None:
    out = run(frag(1, 16, b"b" * 8, mf=False), frag(2, 0, b"a" * 32, mf=True))
    assert out[1][2] == "conflict"


def test_missing_piece_is_incomplete_at_end_of_capture() -> None:
    out = run(frag(1, 0, b"a" * 16, mf=True), frag(2, 32, b"c" * 8, mf=False))
    assert out == {1: (1, -1, "incomplete"), 2: (1, -1, "incomplete")}


def test_timeout_in_capture_time() -> None:
    settings = Settings(defrag_timeout_ns=1_000_000)
    d = Defragmenter(settings)
    first = d.feed(*chunk(frag(1, 0, b"a" * 16, mf=True, ts=0)))
    assert len(first) == 0  # still open
    # The same key long after: the old train times out, the new one starts afresh.
    second = d.feed(*chunk(frag(2, 16, b"b" * 8, mf=False, ts=5_000_000)))
    assert by_frame(second) == {1: (1, -1, "timeout")}
    assert by_frame(d.finish()) == {2: (2, -1, "incomplete")}


def test_unrelated_traffic_expires_old_trains() -> None:
    settings = Settings(defrag_timeout_ns=1_000_000)
    d = Defragmenter(settings)
    d.feed(*chunk(frag(1, 0, b"a" * 16, mf=True, ts=0)))
    out = d.feed(*chunk(frag(2, 0, b"z" * 16, mf=True, ip_id=99, ts=9_000_000)))
    assert by_frame(out)[1][2] == "timeout"


def test_eviction_is_reported() -> None:
    settings = Settings(defrag_max_trains=2)
    out = run(*(frag(i, 0, b"a" * 16, mf=True, ip_id=i) for i in range(1, 5)), settings=settings)
    assert out[1][2] == "evicted" and out[2][2] == "evicted"
    assert out[3][2] == "incomplete" and out[4][2] == "incomplete"


def test_byte_bound_is_reported() -> None:
    settings = Settings(defrag_max_bytes=40)
    out = run(*(frag(i, 0, b"a" * 16, mf=True, ip_id=i) for i in range(1, 5)), settings=settings)
    assert [out[i][2] for i in range(1, 5)] == ["evicted", "evicted", "incomplete", "incomplete"]


def test_train_spanning_chunks_and_first_fragment_ports() -> None:
    d = Defragmenter(S)
    a = d.feed(*chunk(frag(1, 0, b"a" * 16, mf=True, sport=6783, dport=6783, udp_len=60029)))
    assert len(a) == 0
    b = d.feed(*chunk(frag(2, 16, b"b" * 8, mf=False)))
    c = d.finish()
    ann = FragmentAnnotations.concat([a, b, c])
    assert sorted(ann.frame.tolist()) == [1, 2]
    assert set(ann.train_sport.tolist()) == {6783} and set(ann.train_udp_len.tolist()) == {60029}
    assert set(ann.reasm_status.tolist()) == {"complete"}


def test_ipv6_reassembled_length_drops_the_fragment_header() -> None:
    out = run(frag(1, 0, b"a" * 16, mf=True, version=6, src="2001:db8::1"),
              frag(2, 16, b"b" * 8, mf=False, version=6, src="2001:db8::1"))
    assert out[1] == (1, 40 + 24, "complete")


def test_sources_and_ids_are_separate_trains() -> None:
    out = run(frag(1, 0, b"a" * 16, mf=True), frag(2, 0, b"a" * 16, mf=True, src="10.0.0.9"),
              frag(3, 16, b"b" * 8, mf=False), frag(4, 16, b"b" * 8, mf=False, ip_id=8))
    assert out[1] == (1, 44, "complete") and out[3] == (1, 44, "complete")
    assert out[2][2] == "incomplete" and out[4][2] == "incomplete"


def test_fragment_mask() -> None:
    cols, _ = chunk(frag(1, 0, b"a", mf=True), frag(2, 8, b"a", mf=False), frag(3, 0, b"a", mf=False),
                    frag(4, 0, b"a", mf=False, version=6))
    assert fragment_mask(cols).tolist() == [True, True, False, False]


def test_non_fragments_are_ignored() -> None:
    cols = schema.empty_columns(3)
    cols["ip_version"][:] = 4
    cols["ip_frag_off"][:] = 0
    d = Defragmenter(S)
    assert len(d.feed(cols, {})) == 0 and len(d.finish()) == 0


def test_a_train_of_too_many_fragments_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defrag, "MAX_FRAGMENTS_PER_TRAIN", 4)
    out = run(*(frag(i, (i - 1) * 8, b"x" * 8, mf=True) for i in range(1, 7)))
    assert [out[i][2] for i in range(1, 5)] == ["evicted"] * 4
    assert out[5] == (5, -1, "incomplete") and out[6] == (5, -1, "incomplete")


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=9, max_value=3000),
    step_units=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    duplicates=st.integers(min_value=0, max_value=3),
    chunk=st.integers(min_value=1, max_value=8),
)
def test_any_fragmentation_in_any_order_reassembles(size: int, step_units: int, seed: int, duplicates: int,
                                                    chunk: int) -> None:
    """Cut a datagram at multiples of 8, shuffle, repeat a few pieces, feed in chunks: one complete train."""
    rng = np.random.default_rng(seed)
    payload = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    step = 8 * step_units
    pieces = [(off, payload[off : off + step]) for off in range(0, size, step)]
    assume(len(pieces) >= 2)  # one piece is a whole datagram, not a fragment
    order = [int(i) for i in rng.permutation(len(pieces))]
    order += [int(i) for i in rng.integers(0, len(pieces), duplicates)]
    rows = [frag(n + 1, pieces[i][0], pieces[i][1], mf=pieces[i][0] + step < size) for n, i in enumerate(order)]
    d = Defragmenter(S)
    parts = [d.feed(*chunk_of(rows[k : k + chunk])) for k in range(0, len(rows), chunk)]
    parts.append(d.finish())
    out = by_frame(FragmentAnnotations.concat(parts))
    assert sorted(out) == list(range(1, len(rows) + 1))
    assert {status for _, _, status in out.values()} == ({"overlap"} if duplicates else {"complete"})
    assert {length for _, length, _ in out.values()} == {20 + size}
    assert {train for train, _, _ in out.values()} == {1}


def chunk_of(rows: list[dict[str, object]]) -> tuple[dict[str, np.ndarray], dict[int, bytes]]:
    return chunk(*rows)
