"""The Thinner as the scan's row filter keeps exactly the rows it keeps as a plain sink."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT


def make_bench_capture(path: Path, frames: int) -> None:
    """benchmarks/make_capture.py (a script, not a package module) writes the benchmark's traffic mix."""
    spec = importlib.util.spec_from_file_location("make_capture", ROOT / "benchmarks" / "make_capture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module = sys.modules.setdefault("make_capture", module)  # its dataclasses look their module up here
    spec.loader.exec_module(module)
    module.make_capture(path, frames)


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
