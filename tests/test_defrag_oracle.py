"""The columnar defragmenter against the per-fragment one it replaced, on random fragment trains fed in random chunks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support import defrag_oracle

from weavepcap import defrag, schema
from weavepcap.settings import Settings

Row = tuple[int, int, int, bytes, bool, int, int, int]  # ts, key, offset, data, mf, sport, version, ip_len delta


def build(rows: list[Row]) -> tuple[dict[str, np.ndarray], dict[int, bytes]]:
    cols = schema.empty_columns(len(rows))
    payloads: dict[int, bytes] = {}
    for i, (ts, key, off, data, mf, sport, version, delta) in enumerate(rows):
        frame = i + 1
        hdr = 20 if version == 4 else 48
        values = dict(frame=frame, ts_ns=ts, ip_version=version, ip_src=f"10.0.0.{key % 3}", ip_dst="10.0.0.9",
                      ip_id=key // 3, ip_proto=17, ip_mf=mf, ip_frag_off=off, ip_hdr_len=hdr,
                      ip_len=hdr + len(data) + delta, sport=sport, dport=sport + 1, udp_len=sport + 2)
        for name, value in values.items():
            cols[name][i] = value
        if data:
            payloads[frame] = data
    return cols, payloads


def results(engine: object, chunks: list[tuple[dict[str, np.ndarray], dict[int, bytes]]]) -> tuple[object, ...]:
    parts = [engine.feed(*c) for c in chunks] + [engine.finish()]  # type: ignore[attr-defined]
    per_chunk = [sorted(zip(p.frame.tolist(), p.frag_train.tolist(), p.reasm_len.tolist(), p.reasm_status.tolist(),
                            p.train_sport.tolist(), p.train_dport.tolist(), p.train_udp_len.tolist(), strict=True))
                 for p in parts]
    return per_chunk, dict(engine.counts), engine.open_trains, engine.buffered_bytes  # type: ignore[attr-defined]


@st.composite
def trains(draw: st.DrawFn) -> tuple[list[Row], list[int], Settings]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows: list[Row] = []
    for key in range(draw(st.integers(1, 6))):
        size = int(rng.integers(1, 400))
        payload = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        step = 8 * int(rng.integers(1, 12))
        pieces = [(off, payload[off : off + step], off + step < size) for off in range(0, size, step)]
        if rng.random() < 0.3:  # a piece missing (first, last or between)
            pieces.pop(int(rng.integers(0, len(pieces))))
        for _ in range(int(rng.integers(0, 3))):  # duplicates, overlaps, conflicts, pieces past the end
            off, data, mf = pieces[int(rng.integers(0, len(pieces)))] if pieces else (0, b"x" * 8, True)
            kind = rng.integers(0, 4)
            if kind == 1:
                off = max(0, off - 8)  # an overlapping, shifted copy
                data = payload[off : off + len(data) + 8]
            elif kind == 2:
                data = bytes(255 - b for b in data)  # same place, other bytes
            elif kind == 3:
                mf = not mf  # another "last" fragment, or an end moved
            pieces.append((off, data, mf))
        if rng.random() < 0.1:
            pieces.append((65528, b"y" * 16, False))  # past the largest datagram
        order = rng.permutation(len(pieces)).tolist()
        version = 6 if rng.random() < 0.2 else 4
        for i in order:
            off, data, mf = pieces[i]
            cut = data[: int(rng.integers(0, len(data) + 1))] if rng.random() < 0.1 else data  # snap length
            delta = len(data) - len(cut)
            rows.append((0, key, off, cut, mf, 1000 + key, version, delta))
    rng.shuffle(rows)  # keys interleave
    # Capture time: increasing with jitter, with long pauses (timeouts, lingering complete trains).
    t, timed = 0, []
    for r in rows:
        t += int(rng.choice([1_000, 300_000_000, 2_000_000_000, 40_000_000_000], p=[0.85, 0.08, 0.05, 0.02]))
        jitter = int(rng.integers(-500, 500))
        timed.append((t + jitter, *r[1:]))
    cuts = sorted(set(rng.integers(0, len(timed) + 1, int(rng.integers(0, 5))).tolist()))
    bounds = Settings(defrag_max_trains=int(rng.choice([2, 3, 4096])), defrag_max_bytes=int(rng.choice([300, 1 << 26])),
                      defrag_timeout_ns=int(rng.choice([1_000_000_000, 30_000_000_000])))
    return timed, cuts, bounds


@settings(max_examples=300, deadline=None)
@given(case=trains(), limit=st.sampled_from([3, 1024]))
def test_columnar_defragmenter_matches_the_per_fragment_one(case: tuple[list[Row], list[int], Settings],
                                                            limit: int) -> None:
    rows, cuts, bounds = case
    cols, payloads = build(rows)
    edges = [0, *cuts, len(rows)]
    chunks = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        part = {name: array[a:b] for name, array in cols.items()}
        chunks.append((part, {f: d for f, d in payloads.items() if a < f <= b}))
    old_limit, oracle_limit = defrag.MAX_FRAGMENTS_PER_TRAIN, defrag_oracle.MAX_FRAGMENTS_PER_TRAIN
    defrag.MAX_FRAGMENTS_PER_TRAIN = defrag_oracle.MAX_FRAGMENTS_PER_TRAIN = limit
    try:
        expected = results(defrag_oracle.Defragmenter(bounds), chunks)
        got = results(defrag.Defragmenter(bounds), chunks)
    finally:
        defrag.MAX_FRAGMENTS_PER_TRAIN, defrag_oracle.MAX_FRAGMENTS_PER_TRAIN = old_limit, oracle_limit
    assert got == expected
