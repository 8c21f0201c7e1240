"""weavepcap batch: discovery and grouping, outputs, summary and index, resume, failure isolation, CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support.writers import write_pcap
from test_batch_support import (
    FRAME,
    add_corrupt,
    boom_analyze,
    make_incidents,
    stub_analyze,
    stub_report,
    tar_of,
)
from typer.testing import CliRunner

from weavepcap.batch import run_batch
from weavepcap.batch.cache import group_key
from weavepcap.batch.discover import GroupBy, discover
from weavepcap.batch.run import group_slug
from weavepcap.batch.runner import GroupTask
from weavepcap.cli import app
from weavepcap.errors import UsageError
from weavepcap.settings import DEFAULT_SETTINGS, Settings

COMPARED = ["group", "captures", "hosts", "frames", "first_time", "last_time", "span_s", "root_cause",
            "confidence", "headline", "is_fault", "error", "report"]


def crash_analyze(task: GroupTask) -> dict:
    """Kills its worker process for the 'crash' group, as a segfault in a native library would."""
    if "crash" in task.name:
        os._exit(17)
    return stub_analyze(task)


def batch(paths: list[Path | str], out: Path, **kwargs) -> pd.DataFrame:
    kwargs.setdefault("analyze_group", stub_analyze)
    kwargs.setdefault("render_report", stub_report)
    kwargs.setdefault("workers", 2)
    return run_batch([str(p) for p in paths], out, **kwargs).summary


# --- discovery -------------------------------------------------------------------------------------

def test_directory_groups_by_folder_and_ignores_non_captures(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    found = discover([str(root)], tmp_path / "out")
    names = {g.name: [c.rel for c in g.captures] for g in found.groups}
    assert names == {
        "in": ["lone.pcap"],  # captures at the top of a directory form a group named after it
        "inc-a": ["inc-a/host-a.pcap", "inc-a/host-b.pcap.gz"],
        "inc-b": ["inc-b/host-a.pcapng"],
        "inc-c/deep": ["inc-c/deep/host-c.pcap"],
    }
    assert all(Path(c.path).is_absolute() for g in found.groups for c in g.captures)


def test_lone_capture_is_its_own_group_and_glob_keeps_directories(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    found = discover([str(root / "inc-a" / "host-b.pcap.gz")], tmp_path / "out")
    assert [(g.name, len(g.captures)) for g in found.groups] == [("host-b", 1)]
    found = discover([str(root / "inc-*" / "*.pcap*")], tmp_path / "out")
    assert [g.name for g in found.groups] == ["inc-a", "inc-b"]  # inc-c/deep is one level too deep


def test_group_by_pattern_names_groups_and_hosts(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for incident in ("2026-01-x", "2026-02-y"):
        for host in ("alpha", "beta"):
            (root / "site1" / incident).mkdir(parents=True, exist_ok=True)
            write_pcap(root / "site1" / incident / f"{host}-eth0.pcap", [FRAME])
    write_pcap(root / "stray.pcap", [FRAME])
    found = discover([str(root)], tmp_path / "out", group_by="{site}/{incident}/{host}-{_}.pcap")
    assert [g.name for g in found.groups] == ["site1/2026-01-x", "site1/2026-02-y"]
    assert [c.host for c in found.groups[0].captures] == ["alpha", "beta"]
    assert found.skipped == ["stray.pcap: does not match --group-by '{site}/{incident}/{host}-{_}.pcap'"]


def test_group_by_matches_compressed_names_and_wildcards() -> None:
    pattern = GroupBy("**/{incident}/{host}.pcap")
    assert pattern.match("a/b/inc-1/host-a.pcap.gz") == ("inc-1", "host-a")
    assert pattern.match("inc-1/host-a.pcap") == ("inc-1", "host-a")
    assert pattern.match("host-a.pcap") is None
    assert GroupBy("*/{host}.pcapng").match("x/h1.pcapng") == (None, "h1")  # no group field: by directory
    with pytest.raises(UsageError, match="appears twice"):
        GroupBy("{a}/{a}.pcap")


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        discover([str(tmp_path / "nope")], tmp_path / "out")
    with pytest.raises(UsageError, match="no file matches"):
        discover([str(tmp_path / "nope-*.pcap")], tmp_path / "out")


def test_out_dir_inside_input_is_not_walked_and_inputs_never_merge(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    tar_of(root / "inc-b", root / "bundle.tgz")  # so that out/.work holds extracted captures
    batch([root], root / "out")
    assert list((root / "out" / ".work").rglob("*.pcapng"))
    found = discover([str(root)], root / "out")
    assert [g.name for g in found.groups] == ["bundle", "in", "inc-a", "inc-b", "inc-c/deep"]
    globbed = discover([str(root / "**" / "*.pcap*")], root / "out")
    assert [g.name for g in globbed.groups] == ["in", "inc-a", "inc-b", "inc-c/deep"]
    other = make_incidents(tmp_path / "other" / "in")
    found = discover([str(root), str(other)], tmp_path / "out")
    names = [g.name for g in found.groups]
    assert "inc-a" in names and "inc-a~2" in names  # same folder name from two inputs: two groups


def test_group_slug_is_safe() -> None:
    assert group_slug("site/inc 1") == "site/inc_1"
    assert group_slug("../.hidden/<x>") == "_.hidden/_x_"
    assert group_slug("index.html") == "index.html_"


def test_key_depends_on_content_host_and_settings_not_archive_limits() -> None:
    base = group_key([(None, "aa"), ("h", "bb")], DEFAULT_SETTINGS)
    assert base == group_key([("h", "bb"), (None, "aa")], DEFAULT_SETTINGS)
    assert base != group_key([(None, "aa"), ("h", "bc")], DEFAULT_SETTINGS)
    assert base != group_key([(None, "aa"), ("g", "bb")], DEFAULT_SETTINGS)
    assert base != group_key([(None, "aa"), ("h", "bb")], Settings(weave_port=7000))
    assert base == group_key([(None, "aa"), ("h", "bb")], Settings(archive_max_members=3))


# --- running ----------------------------------------------------------------------------------------

def test_batch_writes_outputs_summary_and_isolates_a_corrupt_capture(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    add_corrupt(root)
    out = tmp_path / "out"
    summary = batch([root], out)
    by_group = summary.set_index("group")
    assert list(by_group.index) == ["in", "inc-a", "inc-b", "inc-bad", "inc-c/deep"]
    assert by_group.loc["inc-a", "frames"] == 11 and by_group.loc["inc-a", "hosts"] == "host-a host-b"
    assert by_group.loc["inc-a", "root_cause"] == "many-frames"
    assert by_group.loc["inc-b", "root_cause"] == "few-frames"
    assert by_group.loc["inc-a", "span_s"] == pytest.approx(1.0)
    paths = [c["path"] for c in json.loads((out / "inc-a" / "analysis.json").read_text())["captures"]]
    assert paths == ["inc-a/host-a.pcap", "inc-a/host-b.pcap.gz"]
    error = by_group.loc["inc-bad", "error"]
    assert error.startswith("inc-bad/host-x.pcap (byte offset 0): not a pcap or pcapng capture")
    assert "\n" not in error and str(tmp_path) not in error
    assert by_group.loc["inc-bad", "status"] == "failed" and pd.isna(by_group.loc["inc-bad", "report"])
    for group in ("in", "inc-a", "inc-b", "inc-c/deep"):
        text = (out / group / "analysis.json").read_text()
        assert json.loads(text)["verdict"]["confidence"] == 0.5
        assert str(tmp_path) not in text  # captures are named relative to their input
        assert (out / group / "report.html").is_file()
    on_disk = pd.read_csv(out / "summary.csv")
    assert list(on_disk["group"]) == list(summary["group"])
    parquet = pd.read_parquet(out / "summary.parquet")
    pd.testing.assert_frame_equal(parquet[COMPARED], summary[COMPARED], check_dtype=False)


def test_an_exception_in_one_analysis_is_a_one_line_error(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    shutil.copytree(root / "inc-b", root / "inc-boom")
    summary = batch([root], tmp_path / "out", analyze_group=boom_analyze).set_index("group")
    assert summary.loc["inc-boom", "error"] == "RuntimeError: simulated analysis bug with a second line"
    assert summary["error"].notna().sum() == 1


def test_a_worker_that_dies_fails_only_its_group(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    shutil.copytree(root / "inc-b", root / "inc-crash")
    summary = batch([root], tmp_path / "out", analyze_group=crash_analyze).set_index("group")
    assert summary.loc["inc-crash", "error"] == "the worker process died while analysing this group"
    assert summary["error"].notna().sum() == 1
    assert summary.loc["inc-a", "root_cause"] == "many-frames"


def test_resume_skips_done_groups_redoes_changed_ones_and_force_redoes_all(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    add_corrupt(root)
    out = tmp_path / "out"
    first = batch([root], out)
    stamp = {g: (out / g / "analysis.json").stat().st_mtime_ns for g in ("inc-a", "inc-b")}
    second = batch([root], out)
    status = dict(zip(second["group"], second["status"], strict=True))
    assert status == {"in": "resumed", "inc-a": "resumed", "inc-b": "resumed", "inc-bad": "failed",
                      "inc-c/deep": "resumed"}  # a failed group is retried, the done ones are not
    pd.testing.assert_frame_equal(second[COMPARED], first[COMPARED])
    assert {g: (out / g / "analysis.json").stat().st_mtime_ns for g in stamp} == stamp

    write_pcap(root / "inc-b" / "host-a.pcapng", [FRAME] * 20)  # new content: that group only is redone
    third = batch([root], out)
    status = dict(zip(third["group"], third["status"], strict=True))
    assert status["inc-b"] == "done" and status["inc-a"] == "resumed"
    assert third.set_index("group").loc["inc-b", "frames"] == 20

    forced = batch([root], out, force=True)
    assert set(forced["status"]) == {"done", "failed"}
    assert (out / "inc-a" / "analysis.json").stat().st_mtime_ns != stamp["inc-a"]


def test_a_lost_output_makes_the_group_run_again(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    out = tmp_path / "out"
    batch([root], out)
    (out / "inc-a" / "report.html").unlink()
    summary = batch([root], out)
    assert dict(zip(summary["group"], summary["status"], strict=True))["inc-a"] == "done"


def test_index_links_every_report_counts_verdicts_and_escapes(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    add_corrupt(root)
    evil = root / "<img src=x onerror=alert(1)>"
    shutil.copytree(root / "inc-b", evil)
    out = tmp_path / "out"
    summary = batch([root], out)
    page = (out / "index.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>seen</b>" not in page and "&lt;b&gt;seen&lt;/b&gt;" in page
    for report in summary["report"].dropna():
        href = re.escape(report.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20").replace("=", "%3D"))
        assert re.search(f'href="{href}"', page), report
        assert (out / report).is_file()
    counts = dict(re.findall(r"<tr><td><code>([^<]+)</code></td><td class=\"num\">(\d+)</td></tr>", page))
    assert counts == {"many-frames": "2", "few-frames": "3", "failed": "1"}
    assert 'src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_a_tar_gz_gives_the_same_summary_as_the_directory(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    add_corrupt(root)
    from_dir = batch([root], tmp_path / "out-dir")
    archive = tar_of(root, tmp_path / "in.tar.gz")
    from_tar = batch([archive], tmp_path / "out-tar")
    # The top-level capture's group is named after its input: the folder, or the archive's stem ("in").
    pd.testing.assert_frame_equal(from_tar[COMPARED].drop(columns="error"), from_dir[COMPARED].drop(columns="error"))
    errors = from_tar["error"].dropna().tolist()
    assert errors == ["in.tar.gz:inc-bad/host-x.pcap (byte offset 0): not a pcap or pcapng capture "
                      "(starts with 74686973)"]
    assert len(list((tmp_path / "out-tar" / ".work").iterdir())) == 1


# --- command line -----------------------------------------------------------------------------------

def test_cli_exit_codes_progress_and_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import weavepcap.batch.runner as runner

    monkeypatch.setattr(runner, "default_analyze_group", stub_analyze)
    monkeypatch.setattr(runner, "default_render_report", stub_report)
    root = make_incidents(tmp_path / "in")
    cli = CliRunner()
    ok = cli.invoke(app, ["batch", str(root), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    assert "4 groups: 4 analysed, 0 already done, 0 failed" in ok.output
    assert "4/4 groups · 0 failed" in ok.output  # the progress bar's last state
    add_corrupt(root)
    partial = cli.invoke(app, ["batch", str(root), "--out", str(tmp_path / "out"), "-j", "2"])
    assert partial.exit_code == 4
    assert "5 groups: 0 analysed, 4 already done, 1 failed" in partial.output
    quiet = cli.invoke(app, ["batch", str(root), "--out", str(tmp_path / "out"), "-q"])
    assert quiet.exit_code == 4 and quiet.output == ""
    missing = cli.invoke(app, ["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert missing.exit_code == 2
    assert missing.output.strip().endswith("missing: no such file or directory")
    assert "Traceback" not in missing.output


def test_an_unreadable_capture_fails_its_group_before_analysis(tmp_path: Path) -> None:
    root = make_incidents(tmp_path / "in")
    (root / "inc-gone").mkdir()
    (root / "inc-gone" / "a.pcap").symlink_to(tmp_path / "deleted.pcap")  # a dangling link
    summary = batch([root], tmp_path / "out").set_index("group")
    assert summary.loc["inc-gone", "error"] == "inc-gone/a.pcap: cannot read: No such file or directory"
    assert summary["error"].notna().sum() == 1
