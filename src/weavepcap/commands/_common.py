"""What every command shares: one-line errors with exit codes, capture-spec parsing, the console."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from weavepcap.errors import WeavepcapError
from weavepcap.io.records import CaptureSpec

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
    return [CaptureSpec.parse(t) for t in texts]
