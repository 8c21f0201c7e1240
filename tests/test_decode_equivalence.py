"""Fast path == per-packet path, column by column, on samples, the shared real captures and random frames."""

from __future__ import annotations

from pathlib import Path

import dpkt
import numpy as np
import pytest

from tests.conftest import SAMPLES, real_captures
from weavepcap.decode import DecodeState, core, decode_chunk
from weavepcap.io.records import FrameChunk, chunk_from_frames
from weavepcap.schema import COLUMN_BY_NAME, PACKET_COLUMNS
from weavepcap.settings import Settings

MAX_FRAMES = 200_000  # bound per capture: keeps the test fast on a big sample


def read_chunk(path: Path) -> FrameChunk:
    """All frames of a classic pcap or pcapng via dpkt (independent of weavepcap.io); stops at damage."""
    frames: list[bytes] = []
    with path.open("rb") as handle:
        reader = dpkt.pcap.UniversalReader(handle)
        try:
            for _, buf in reader:
                frames.append(bytes(buf))
                if len(frames) >= MAX_FRAMES:
                    break
        except (dpkt.NeedData, dpkt.UnpackError, ValueError):
            pass  # a record cut short at the end: decode what came before it
        return chunk_from_frames(frames, linktype=reader.datalink())


def fast_engines() -> tuple[str, ...]:
    """The fast paths to hold against the per-packet reference: numpy always, the compiled core when built."""
    return ("numpy", "core") if core.available() else ("numpy",)


def assert_same_columns(chunk: FrameChunk, settings: Settings | None = None) -> None:
    settings = settings or Settings()
    slow = decode_chunk(chunk, settings, DecodeState(), force_slow=True)
    assert slow.errors == []
    for engine in fast_engines():
        fast = decode_chunk(chunk, settings, DecodeState(), engine=engine)
        assert fast.errors == [], engine
        for column in PACKET_COLUMNS:
            a, b = fast.columns[column.name], slow.columns[column.name]
            assert a.dtype == b.dtype, column.name
            differ = np.flatnonzero(a != b)
            assert differ.size == 0, (
                f"{engine} {column.name}: frames {chunk.frame[differ[:5]].tolist()} "
                f"fast {a[differ[:5]]} slow {b[differ[:5]]}"
            )
        assert fast.fragment_payloads == slow.fragment_payloads, engine


def _sample_paths() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.glob("**/*.pcap*") if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("path", real_captures(), ids=lambda p: p.name)
def test_fast_equals_slow_on_real_captures(path: Path) -> None:
    assert_same_columns(read_chunk(path))


@pytest.mark.parametrize("path", _sample_paths(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_fast_equals_slow_on_samples(path: Path) -> None:
    assert_same_columns(read_chunk(path))


def test_empty_chunk() -> None:
    decoded = decode_chunk(chunk_from_frames([]), Settings(), DecodeState())
    assert all(len(v) == 0 for v in decoded.columns.values())


def test_fast_equals_slow_across_several_row_blocks() -> None:
    from support.chunks import make_chunk

    from weavepcap.decode.fast import BLOCK_ROWS

    chunk = make_chunk(BLOCK_ROWS + BLOCK_ROWS // 2, seed=3)  # two blocks, the second one partial
    assert_same_columns(chunk)
    decoded = decode_chunk(chunk, Settings(), DecodeState())
    assert decoded.slow_frames < len(chunk) // 50  # the benchmark mix is mostly fast-path shapes


def test_columns_have_the_schema_dtypes() -> None:
    from support.chunks import make_chunk

    decoded = decode_chunk(make_chunk(500), Settings(), DecodeState())
    assert list(decoded.columns) == [c.name for c in PACKET_COLUMNS]
    for column in PACKET_COLUMNS:
        values = decoded.columns[column.name]
        assert values.shape == (500,)
        if column.dtype == "str":
            assert values.dtype == object and all(isinstance(v, str) for v in values), column.name
        else:
            assert values.dtype == np.dtype(column.dtype), column.name
    for column in (
        "klass",
        "overlay_mtu",
        "peer_src_short",
        "peer_dst_short",
        "uncertain",
        "frag_train",
        "reasm_len",
        "reasm_status",
    ):
        assert (decoded.columns[column] == COLUMN_BY_NAME[column].missing).all(), column
