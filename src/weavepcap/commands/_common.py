"""What every command shares: one-line errors with exit codes, capture-spec parsing, the console."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from weavepcap.errors import WeavepcapError
from weavepcap.io.records import CaptureSpec
from weavepcap.naming import infer_file_hosts

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True, highlight=False)


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a WeavepcapError into `weavepcap: error: <one line>` and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except WeavepcapError as exc:
            print(f"weavepcap: error: {exc}", file=sys.stderr)
            raise typer.Exit(code=int(exc.exit_code)) from None
        except KeyboardInterrupt:
            print("weavepcap: interrupted", file=sys.stderr)
            raise typer.Exit(code=130) from None

    return wrapper


def parse_specs(texts: list[str]) -> list[CaptureSpec]:
    """CaptureSpec for each `PATH`, `HOST=PATH` or `-` argument."""
    return infer_file_hosts([CaptureSpec.parse(t) for t in texts])


ProgressCallback = Callable[[int, int], None]


@contextmanager
def progress_bar(spec: CaptureSpec, min_bytes: int) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on stderr while reading a file of at least min_bytes, only on a terminal.

    Yields the callback the scan calls with (bytes done, bytes total), or None when no bar is shown.
    """
    try:
        size = os.path.getsize(spec.path) if spec.path != "-" else 0
    except OSError:
        size = 0
    if not err_console.is_terminal or size < min_bytes:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task(os.path.basename(spec.path), total=size)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update
