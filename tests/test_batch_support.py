"""Batch test helpers: a stand-in analysis built on the real reader, and small incident trees on disk."""

from __future__ import annotations

import html
import io
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.writers import DEFAULT_START_NS, write_pcap, write_pcapng

from weavepcap.batch.discover import capture_stem
from weavepcap.batch.runner import GroupTask
from weavepcap.io import open_capture
from weavepcap.io.records import CaptureSpec

FRAME = bytes(14) + b"\x45" + bytes(40)  # any bytes do: the stand-in only counts frames


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stub_analyze(task: GroupTask) -> dict[str, Any]:
    """Reads every capture with weavepcap.io (so corrupt files fail as they would) and returns a verdict
    that depends on the frame count; the JSON has the fields batch reads from Analysis.to_dict()."""
    captures = []
    for path, host in task.captures:
        frames = 0
        first = last = None
        with open_capture(CaptureSpec(path=path, host=host), task.settings) as capture:
            for chunk in capture.chunks():
                frames += len(chunk)
                if len(chunk):
                    first = int(chunk.ts_ns.min()) if first is None else first
                    last = int(chunk.ts_ns.max())
        captures.append({
            "path": path, "name": Path(path).name, "host": host or capture_stem(path), "frames": frames,
            "first_time": _iso(first) if first is not None else None,
            "last_time": _iso(last) if last is not None else None,
        })
    total = sum(c["frames"] for c in captures)
    cause = "many-frames" if total >= 10 else "few-frames"
    return {
        "format_version": 1,
        "captures": captures,
        "hosts": [{"name": n} for n in sorted({c["host"] for c in captures})],
        "verdict": {"root_cause": cause, "confidence": 0.5, "headline": f"{total} frames <b>seen</b>",
                    "is_fault": cause == "many-frames"},
    }


def stub_report(doc: dict[str, Any], path: Path) -> None:
    path.write_text(f"<html><body>{html.escape(doc['verdict']['headline'])}</body></html>", encoding="utf-8")


def boom_analyze(task: GroupTask) -> dict[str, Any]:
    """Fails for any group whose name contains 'boom', like a bug in one analysis would."""
    if "boom" in task.name:
        raise RuntimeError("simulated analysis bug\nwith a second line")
    return stub_analyze(task)


def make_incidents(root: Path) -> Path:
    """Three incidents and one lone capture; frame counts make the verdicts differ."""
    day = 86_400 * 10**9
    (root / "inc-a").mkdir(parents=True)
    write_pcap(root / "inc-a" / "host-a.pcap", [FRAME] * 6, ts_ns=[DEFAULT_START_NS + i for i in range(6)])
    write_pcap(root / "inc-a" / "host-b.pcap.gz", [FRAME] * 5, compression="gzip",
               ts_ns=[DEFAULT_START_NS + 10**9 + i for i in range(5)])
    (root / "inc-b").mkdir()
    write_pcapng(root / "inc-b" / "host-a.pcapng", [FRAME] * 3, ts_ns=[DEFAULT_START_NS + day + i for i in range(3)])
    (root / "inc-c" / "deep").mkdir(parents=True)
    write_pcap(root / "inc-c" / "deep" / "host-c.pcap", [FRAME] * 2,
               ts_ns=[DEFAULT_START_NS + 2 * day + i for i in range(2)])
    (root / "inc-a" / "notes.txt").write_text("not a capture")
    write_pcap(root / "lone.pcap", [FRAME] * 12)
    return root


def add_corrupt(root: Path) -> Path:
    (root / "inc-bad").mkdir()
    path = root / "inc-bad" / "host-x.pcap"
    path.write_bytes(b"this is not a capture at all" * 4)
    return path


def tar_of(source: Path, archive: Path) -> Path:
    """A tar.gz of everything under source, member names relative to it."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    return archive


def tar_with(archive: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None,
             mode: str = "w:gz") -> Path:
    """A tar with hand-made headers (names, types, link targets) for the safety tests."""
    data = data or {}
    with tarfile.open(archive, mode) as tar:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return archive


CLUSTER_TIMEOUT_S = 60


def local_cluster_address() -> Iterator[str]:
    """A real dask.distributed LocalCluster (scheduler + 2 worker processes) for a fixture; bounded start and stop."""
    import pytest

    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", scheduler_port=0,
        host="127.0.0.1", timeout=CLUSTER_TIMEOUT_S, death_timeout=CLUSTER_TIMEOUT_S,
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close(timeout=CLUSTER_TIMEOUT_S)
