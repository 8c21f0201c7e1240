"""Batch with the real pipeline over the bundled samples: verdicts match expected.json, as a folder and as a tar.gz."""

from __future__ import annotations

import importlib.util
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES, need
from test_batch_support import local_cluster_address, stub_report

from weavepcap.batch import run_batch

GROUP_BY = "{incident}/{host}/*"
COMPARED = ["group", "captures", "hosts", "frames", "first_time", "last_time", "span_s", "root_cause",
            "confidence", "headline", "is_fault", "error", "report"]


def scenarios() -> dict[str, dict]:
    """expected.json of every sample folder that says which captures analyze takes (`analyze_args`)."""
    found = {}
    for expected in sorted(SAMPLES.glob("*/expected.json")):
        document = json.loads(expected.read_text())
        if document.get("analyze_args"):
            found[expected.parent.name] = document
    return found


@pytest.fixture(scope="module")
def incidents(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """incidents/<scenario>/<host>/<capture>, laid out from each scenario's analyze_args."""
    need(bool(scenarios()), "samples/*/expected.json with analyze_args are missing")
    for module in ("weavepcap.api", "weavepcap.report.htmlreport"):
        need(importlib.util.find_spec(module) is not None, f"{module} is not built yet")
    root = tmp_path_factory.mktemp("batch-samples") / "incidents"
    expected = {}
    for name, document in scenarios().items():
        for argument in document["analyze_args"]:
            host, _, capture = argument.rpartition("=")
            target = root / name / (host or "unknown") / capture
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SAMPLES / name / capture, target)
        expected[name] = document["root_cause"]
    return root, expected


@pytest.fixture(scope="module")
def directory_run(incidents: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    """One real batch over the samples plus a corrupt incident, shared by the tests below (it is the slow part)."""
    root, _ = incidents
    work = tmp_path_factory.mktemp("batch-samples-run") / "incidents"
    shutil.copytree(root, work)
    (work / "zz-corrupt" / "host-a").mkdir(parents=True)
    (work / "zz-corrupt" / "host-a" / "eth0.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 10)
    out = work.parent / "out"
    return work, out, run_batch([str(work)], out, group_by=GROUP_BY)


@pytest.mark.slow
def test_batch_over_the_samples_finds_every_expected_root_cause(incidents, directory_run) -> None:
    _, expected = incidents
    work, out, result = directory_run
    summary = result.summary.set_index("group")
    assert dict(summary["root_cause"].dropna()) == expected
    assert summary["error"].dropna().index.tolist() == ["zz-corrupt"]
    assert "zz-corrupt/host-a/eth0.pcap" in summary.loc["zz-corrupt", "error"]
    for name in expected:
        document = json.loads((out / name / "analysis.json").read_text())
        assert document["verdict"]["root_cause"] == expected[name]
        assert (out / name / "report.html").stat().st_size > 0
    page = (out / "index.html").read_text()
    assert all(f'href="{name}/report.html"' in page for name in expected)

    again = run_batch([str(work)], out, group_by=GROUP_BY).summary
    assert set(again.loc[again["group"] != "zz-corrupt", "status"]) == {"resumed"}
    pd.testing.assert_frame_equal(again[COMPARED], result.summary[COMPARED])


@pytest.mark.slow
def test_the_samples_as_a_tar_gz_give_the_same_summary(directory_run, tmp_path: Path) -> None:
    work, _, result = directory_run
    archive = tmp_path / "incidents.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(work, arcname=".")
    # The HTML report does not feed the summary: a light one keeps this test fast.
    from_tar = run_batch([str(archive)], tmp_path / "out-tar", group_by=GROUP_BY, render_report=stub_report).summary
    same = [c for c in COMPARED if c != "error"]
    pd.testing.assert_frame_equal(from_tar[same], result.summary[same])
    assert from_tar["error"].notna().tolist() == result.summary["error"].notna().tolist()
    assert from_tar["error"].dropna().str.startswith("incidents.tar.gz:zz-corrupt/host-a/eth0.pcap").all()


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    yield from local_cluster_address()


@pytest.mark.slow
def test_a_local_dask_cluster_gives_the_same_real_results(directory_run, scheduler_address: str, tmp_path: Path) -> None:
    work, _, result = directory_run
    on_dask = run_batch([str(work)], tmp_path / "out-dask", group_by=GROUP_BY, scheduler=scheduler_address,
                        render_report=stub_report).summary
    same = [c for c in COMPARED if c != "error"]
    pd.testing.assert_frame_equal(on_dask[same], result.summary[same])
    assert on_dask["error"].notna().tolist() == result.summary["error"].notna().tolist()
