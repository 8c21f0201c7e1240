"""Run group tasks: one worker function, a local process pool by default, or an existing Dask scheduler."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from weavepcap.batch.cache import ANALYSIS_NAME, REPORT_NAME, write_json_atomic, write_record
from weavepcap.errors import ExitCode, WeavepcapError
from weavepcap.io.records import CaptureSpec
from weavepcap.naming import infer_file_hosts
from weavepcap.settings import Settings

# Imported once by the fork server, so each worker forks with the pipeline loaded (missing ones are skipped).
FORKSERVER_PRELOAD = ["weavepcap.batch.runner", "weavepcap.io", "weavepcap.api", "weavepcap.report.htmlreport"]
POOL_ROUNDS = 3  # pools in turn: a dead worker breaks its pool, the unfinished groups run again in the next
SCHEDULER_CONNECT_TIMEOUT_S = 20.0


class SchedulerError(WeavepcapError):
    """The Dask scheduler named by --scheduler cannot be reached."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class GroupTask:
    """Everything a worker needs for one group: paths (workers read the files), where to write, the key."""

    name: str
    slug: str  # output directory under --out, relative
    out_dir: str  # absolute: <out>/<slug>
    out_root: str  # absolute --out, only to shorten paths in error messages
    captures: tuple[tuple[str, str | None], ...]  # (absolute path, host or None)
    shown: tuple[str, ...]  # each capture's path relative to its input, for messages
    key: str
    settings: Settings

    def specs(self) -> list[CaptureSpec]:
        return infer_file_hosts([CaptureSpec(path=path, host=host) for path, host in self.captures])


AnalyzeGroup = Callable[[GroupTask], dict[str, Any]]
RenderReport = Callable[[dict[str, Any], Path], None]
TaskFunction = Callable[[GroupTask], dict[str, Any]]


def default_analyze_group(task: GroupTask) -> dict[str, Any]:
    """The same pipeline as `weavepcap analyze`, returning the JSON document (Analysis.to_dict())."""
    from weavepcap.api import analyze

    return analyze(task.specs(), settings=task.settings).to_dict()


def default_render_report(doc: dict[str, Any], path: Path) -> None:
    """The same HTML report as `weavepcap report`."""
    from weavepcap.report.htmlreport import write_html

    write_html(doc, path)


def one_line_error(exc: BaseException, out_root: str = "", shown: dict[str, str] | None = None) -> str:
    """A failure as one line; capture paths as the user knows them, other paths under --out relative to it."""
    if isinstance(exc, WeavepcapError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    for path, display in (shown or {}).items():
        text = text.replace(path, display)
    if out_root:
        text = text.replace(out_root.rstrip("/") + "/", "")
    return text


def _iso(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def row_from_doc(task: GroupTask, doc: dict[str, Any]) -> dict[str, Any]:
    """The summary row of a finished analysis (reads only the JSON document, as every presenter does)."""
    captures = doc.get("captures") or []
    hosts = sorted({str(h.get("name")) for h in doc.get("hosts") or [] if h.get("name")})
    verdict = doc.get("verdict") or {}
    firsts = [t for t in (_iso(c.get("first_time")) for c in captures) if t is not None]
    lasts = [t for t in (_iso(c.get("last_time")) for c in captures) if t is not None]
    first = min(firsts) if firsts else None
    last = max(lasts) if lasts else None
    confidence = verdict.get("confidence")
    return {
        "group": task.name,
        "captures": len(captures),
        "hosts": " ".join(hosts),
        "frames": int(sum(int(c.get("frames") or 0) for c in captures)),
        "first_time": first.isoformat().replace("+00:00", "Z") if first else None,
        "last_time": last.isoformat().replace("+00:00", "Z") if last else None,
        "span_s": (last - first).total_seconds() if first and last else None,
        "root_cause": verdict.get("root_cause"),
        "confidence": float(confidence) if confidence is not None else None,
        "headline": verdict.get("headline"),
        "is_fault": verdict.get("is_fault"),
        "error": None,
        "report": f"{task.slug}/{REPORT_NAME}",
    }


def failed_row(task_name: str, error: str, *, captures: int = 0, hosts: str = "") -> dict[str, Any]:
    """The summary row of a group that produced no analysis."""
    return {
        "group": task_name, "captures": captures, "hosts": hosts, "frames": None, "first_time": None,
        "last_time": None, "span_s": None, "root_cause": None, "confidence": None, "headline": None,
        "is_fault": None, "error": error, "report": None,
    }


def _task_failed_row(task: GroupTask, error: str) -> dict[str, Any]:
    hosts = " ".join(sorted({h for _, h in task.captures if h}))
    return failed_row(task.name, error, captures=len(task.captures), hosts=hosts)


def _show_capture_paths(doc: dict[str, Any], task: GroupTask) -> None:
    """Name captures as the user gave them (relative to their input), not by the absolute paths workers read."""
    shown = dict(zip((path for path, _ in task.captures), task.shown, strict=False))
    for capture in doc.get("captures") or []:
        if isinstance(capture, dict) and capture.get("path") in shown:
            capture["path"] = shown[capture["path"]]


def run_group(
    task: GroupTask,
    analyze_group: AnalyzeGroup | None = None,
    render_report: RenderReport | None = None,
) -> dict[str, Any]:
    """Analyse one group in a worker: write analysis.json, report.html and the resume record; return its row.

    Never raises for a bad group: the error becomes the row's one-line `error`.
    """
    started = time.perf_counter()
    group_dir = Path(task.out_dir)
    try:
        group_dir.mkdir(parents=True, exist_ok=True)
        doc = (analyze_group or default_analyze_group)(task)
        _show_capture_paths(doc, task)
        write_json_atomic(group_dir / ANALYSIS_NAME, doc)
        report = group_dir / REPORT_NAME
        temporary = report.with_name(report.name + f".tmp{os.getpid()}")
        (render_report or default_render_report)(doc, temporary)
        os.replace(temporary, report)
        row = row_from_doc(task, doc)
        key: str | None = task.key
    except Exception as exc:  # failure isolation: any error in one group is that group's result
        shown = {path: rel for (path, _), rel in zip(task.captures, task.shown, strict=False)}
        row = _task_failed_row(task, one_line_error(exc, task.out_root, shown))
        if not isinstance(exc, WeavepcapError) and os.environ.get("WEAVEPCAP_DEBUG"):
            traceback.print_exc()
        key = None
        for stale in (ANALYSIS_NAME, REPORT_NAME):  # outputs of an earlier run would no longer match the inputs
            with contextlib.suppress(OSError):
                (group_dir / stale).unlink(missing_ok=True)
    row["seconds"] = round(time.perf_counter() - started, 3)
    row["worker_pid"] = os.getpid()
    try:
        write_record(group_dir, key, row)
    except OSError as exc:
        row["error"] = row["error"] or one_line_error(exc, task.out_root)
    return row


def task_function(analyze_group: AnalyzeGroup | None, render_report: RenderReport | None) -> TaskFunction:
    """run_group with the pipeline bound (picklable when the callables are module-level functions).

    The defaults are resolved here, in the driver, so workers run exactly what the driver chose.
    """
    return partial(run_group, analyze_group=analyze_group or default_analyze_group,
                   render_report=render_report or default_render_report)


def run_local(tasks: list[GroupTask], function: TaskFunction, workers: int) -> Iterator[dict[str, Any]]:
    """Rows as groups finish, on a local process pool; a worker that dies fails only its own group.

    A dead worker breaks the whole pool, so unfinished groups are retried on a fresh pool; in the last
    round each group runs alone, so the one that kills its worker is the one reported.
    """
    pending = list(tasks)
    # forkserver: workers never inherit the driver's threads (progress bar, Dask client) or its locks.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORKSERVER_PRELOAD)
    for round_number in range(1, POOL_ROUNDS + 1):
        if not pending:
            return
        last_round = round_number == POOL_ROUNDS
        broken: list[GroupTask] = []
        pool_size = 1 if last_round else max(1, min(workers, len(pending)))
        batches = [[t] for t in pending] if last_round else [pending]
        for batch in batches:
            pool = ProcessPoolExecutor(max_workers=pool_size, mp_context=context)
            try:
                futures: dict[Future[dict[str, Any]], GroupTask] = {pool.submit(function, t): t for t in batch}
                remaining = set(futures)
                while remaining:
                    done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = futures[future]
                        try:
                            yield future.result()
                        except BrokenProcessPool:
                            if last_round:
                                yield _task_failed_row(task, "the worker process died while analysing this group")
                            else:
                                broken.append(task)
                        except Exception as exc:  # e.g. a task that cannot be pickled
                            yield _task_failed_row(task, one_line_error(exc, task.out_root))
            except BaseException:
                # Interrupted (Ctrl-C) or abandoned: drop the queued groups instead of waiting for them.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        pending = broken


def run_dask(
    tasks: list[GroupTask], function: TaskFunction, address: str, *, timeout_s: float = SCHEDULER_CONNECT_TIMEOUT_S,
) -> Iterator[dict[str, Any]]:
    """Rows as groups finish on an existing dask.distributed scheduler (the workers must see the same paths)."""
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except Exception as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler at {address}: {one_line_error(exc)}") from None
    run_id = uuid.uuid4().hex[:8]
    try:
        futures = {
            client.submit(function, task, key=f"weavepcap-batch-{run_id}-{index}", pure=False, retries=0): task
            for index, task in enumerate(tasks)
        }
        for future in as_completed(futures, loop=client.loop):
            task = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # a killed worker, a lost task, an unpicklable result
                yield _task_failed_row(task, f"dask: {one_line_error(exc, task.out_root)}")
            finally:
                future.release()
    finally:
        client.close(timeout=timeout_s)
