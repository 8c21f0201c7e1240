"""Errors that reach the user as one line, and the process exit codes they map to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (documented in the README)."""

    OK = 0
    FAULT_FOUND = 1  # only with --fail-on-fault: the verdict is a fault
    USAGE = 2  # bad command line (typer/click's own code)
    BAD_INPUT = 3  # a capture could not be read at all
    PARTIAL_FAILURE = 4  # batch: at least one group failed


class WeavepcapError(Exception):
    """Base of every error shown to the user as one line."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class CaptureError(WeavepcapError):
    """A capture that cannot be read at all (not a capture, empty, truncated header, ...)."""

    def __init__(self, path: str, message: str, *, offset: int | None = None, frame: int | None = None) -> None:
        self.path = path
        self.offset = offset
        self.frame = frame
        self.message = message
        where = ""
        if frame is not None:
            where = f" (frame {frame})"
        elif offset is not None:
            where = f" (byte offset {offset})"
        super().__init__(f"{path}{where}: {message}")


class UsageError(WeavepcapError):
    """A bad argument found after parsing (e.g. malformed HOST=PATH)."""

    exit_code = ExitCode.USAGE
