"""Batch on a real dask.distributed LocalCluster (scheduler + 2 worker processes): same summary as the local pool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from test_batch_support import add_corrupt, local_cluster_address, make_incidents, stub_analyze, stub_report

from weavepcap.batch import run_batch
from weavepcap.batch.runner import SchedulerError

COMPARED = ["group", "captures", "hosts", "frames", "first_time", "last_time", "span_s", "root_cause",
            "confidence", "headline", "is_fault", "error", "report", "status"]


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    yield from local_cluster_address()


@pytest.mark.slow
def test_local_cluster_gives_the_same_summary_as_the_local_pool(tmp_path: Path, scheduler_address: str) -> None:
    root = make_incidents(tmp_path / "in")
    add_corrupt(root)
    common = {"analyze_group": stub_analyze, "render_report": stub_report}
    local = run_batch([str(root)], tmp_path / "out-local", workers=2, **common).summary
    on_dask = run_batch([str(root)], tmp_path / "out-dask", scheduler=scheduler_address, **common)
    pd.testing.assert_frame_equal(on_dask.summary[COMPARED], local[COMPARED])
    assert on_dask.failed == 1
    assert (tmp_path / "out-dask" / "inc-a" / "report.html").is_file()
    again = run_batch([str(root)], tmp_path / "out-dask", scheduler=scheduler_address, **common).summary
    assert set(again["status"]) == {"resumed", "failed"}  # resume works the same on the cluster


@pytest.mark.slow
def test_cli_scheduler_option(tmp_path: Path, scheduler_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import weavepcap.batch.runner as runner
    from weavepcap.cli import app

    monkeypatch.setattr(runner, "default_analyze_group", stub_analyze)
    monkeypatch.setattr(runner, "default_render_report", stub_report)
    root = make_incidents(tmp_path / "in")
    result = CliRunner().invoke(app, ["batch", str(root), "--out", str(tmp_path / "out"), "--scheduler",
                                      scheduler_address, "-q"])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary["frames"]) == [12, 11, 3, 2]


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    with pytest.raises(SchedulerError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_batch([str(root)], tmp_path / "out", scheduler="tcp://127.0.0.1:9", scheduler_timeout_s=1,
                  analyze_group=stub_analyze, render_report=stub_report)
