"""A whole batch, top-down: discover groups, skip the done ones, run the rest, write summary and index."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from weavepcap.batch.cache import done_row, file_digest, group_key, write_record
from weavepcap.batch.discover import Group, discover
from weavepcap.batch.runner import (
    SCHEDULER_CONNECT_TIMEOUT_S,
    AnalyzeGroup,
    GroupTask,
    RenderReport,
    failed_row,
    one_line_error,
    run_dask,
    run_local,
    task_function,
)
from weavepcap.batch.summary import summary_frame, write_index, write_summary
from weavepcap.settings import DEFAULT_SETTINGS, Settings

DIGEST_THREADS = 4  # hashlib releases the GIL on big blocks: a few threads keep the disk busy
_RESERVED = {"index.html", "summary.csv", "summary.parquet"}


@dataclass
class BatchResult:
    """What a batch produced: the summary table (one row per group) and where everything is."""

    summary: pd.DataFrame
    out_dir: Path
    skipped_inputs: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return int(self.summary["error"].notna().sum())

    def count(self, status: str) -> int:
        return int((self.summary["status"] == status).sum())


def group_slug(name: str) -> str:
    """Output directory for a group: its name, each component reduced to safe characters, never hidden."""
    parts = [re.sub(r"[^A-Za-z0-9._~-]", "_", p) for p in name.split("/") if p not in ("", ".", "..")]
    parts = ["_" + p if p.startswith(".") else p for p in parts] or ["_"]
    if parts[0] in _RESERVED:
        parts[0] += "_"
    return "/".join(parts)


def _unique_slugs(groups: list[Group]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for group in groups:
        slug = base = group_slug(group.name)
        n = 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        slugs[group.name] = slug
    return slugs


def _digests(paths: list[str]) -> dict[str, str | OSError]:
    """sha256 of every capture (or the OSError reading it), a few at a time: hashlib releases the GIL."""
    def one(path: str) -> str | OSError:
        try:
            return file_digest(path)
        except OSError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=DIGEST_THREADS) as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


class _Progress:
    """A rich progress bar on stderr with done/resumed/failed counts and an ETA (silent when disabled)."""

    def __init__(self, total: int, console: Console | None, enabled: bool) -> None:
        self.failed = 0
        self.enabled = enabled
        self.bar = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("groups · [red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
            transient=False,
        )
        self.task = self.bar.add_task("batch", total=total, failed=0)

    @contextmanager
    def running(self) -> Iterator[_Progress]:
        with self.bar:
            yield self

    def advance(self, row: dict[str, Any]) -> None:
        if row.get("error"):
            self.failed += 1
        self.bar.update(self.task, advance=1, failed=self.failed)


def run_batch(
    paths: list[str],
    out_dir: str | Path,
    *,
    group_by: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    settings: Settings | None = None,
    analyze_group: AnalyzeGroup | None = None,
    render_report: RenderReport | None = None,
    progress: bool = False,
    console: Console | None = None,
    scheduler_timeout_s: float = SCHEDULER_CONNECT_TIMEOUT_S,
) -> BatchResult:
    """Analyse every group found in `paths`, writing per-group outputs and the batch summary under out_dir.

    `analyze_group(task) -> JSON document` and `render_report(doc, path)` default to the real pipeline
    (weavepcap.api.analyze and the HTML report); they must be picklable module-level functions.
    Failures are rows with an `error`, never exceptions; UsageError/SchedulerError are raised for
    arguments that make the whole batch impossible.
    """
    settings = settings or DEFAULT_SETTINGS
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    discovery = discover(paths, out, group_by=group_by, settings=settings)
    slugs = _unique_slugs(discovery.groups)

    digests = _digests([c.path for g in discovery.groups if not g.error for c in g.captures])
    rows: list[dict[str, Any]] = []
    tasks: list[GroupTask] = []
    for group in discovery.groups:
        group_dir = out / slugs[group.name]
        hosts = " ".join(sorted({c.host for c in group.captures if c.host}))
        if group.error:
            rows.append(failed_row(group.name, group.error, hosts=hosts) | {"status": "failed"})
            continue
        unreadable = [(c, digests[c.path]) for c in group.captures if isinstance(digests[c.path], OSError)]
        if unreadable:
            capture, exc = unreadable[0]
            row = failed_row(group.name, f"{capture.shown or capture.rel}: cannot read: {exc.strerror or exc}",
                             captures=len(group.captures), hosts=hosts)
            write_record(group_dir, None, row)
            rows.append(row | {"status": "failed"})
            continue
        key = group_key(((c.host, str(digests[c.path])) for c in group.captures), settings)
        stored = None if force else done_row(group_dir, key)
        if stored is not None:
            rows.append(stored | {"group": group.name, "status": "resumed"})
            continue
        tasks.append(GroupTask(
            name=group.name, slug=slugs[group.name], out_dir=str(group_dir), out_root=str(out),
            captures=tuple((c.path, c.host) for c in group.captures), shown=tuple(c.shown or c.rel for c in group.captures),
            key=key, settings=settings,
        ))

    function = task_function(analyze_group, render_report)
    bar = _Progress(len(discovery.groups), console, progress)
    with bar.running():
        for row in rows:
            bar.advance(row)
        if tasks:
            if scheduler:
                finished = run_dask(tasks, function, scheduler, timeout_s=scheduler_timeout_s)
            else:
                finished = run_local(tasks, function, workers or min(os.cpu_count() or 1, len(tasks)))
            for row in finished:
                row["status"] = "failed" if row.get("error") else "done"
                rows.append(row)
                bar.advance(row)

    frame = summary_frame(rows)
    write_summary(frame, out)
    write_index(frame, out)
    return BatchResult(summary=frame, out_dir=out, skipped_inputs=discovery.skipped)


__all__ = ["BatchResult", "run_batch", "group_slug", "one_line_error"]
