"""The Thinner as the scan's row filter keeps exactly the rows it keeps as a plain sink."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import benchmark_generator


def make_bench_capture(path: Path, frames: int) -> None:
    benchmark_generator().make_capture(path, frames)


@pytest.mark.parametrize("chunk_bytes", [64 * 1024, 1024 * 1024])
def test_thinning_before_the_dataframes_keeps_the_same_rows(chunk_bytes: int, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from weavepcap import api
    from weavepcap.scan import scan_capture
    from weavepcap.settings import Settings

    path = tmp_path / "bench.pcap"
    make_bench_capture(path, 20_000)
    # Small thinning bounds, so every bulk flow is thinned across many batches.
    monkeypatch.setattr(api, "THIN_HEAD", 40)
    monkeypatch.setattr(api, "THIN_TAIL", 15)
    monkeypatch.setattr(api, "THIN_STRIDE", 7)
    settings = Settings(chunk_bytes=chunk_bytes)
    plain, filtered = api.Thinner(), api.Thinner()
    result = scan_capture(str(path), settings, keep="notable", sink=plain)
    scan_capture(str(path), settings, keep="notable", sink=filtered, row_filter=filtered.select)
    expected, got = plain.frame(), filtered.frame()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert 0 < len(got) < result.summary.frames // 2  # thinning did drop most of the bulk rows
