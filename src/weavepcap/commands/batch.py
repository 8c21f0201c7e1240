"""`weavepcap batch` (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def command() -> None:
    """Not built yet."""
    raise typer.Exit(code=2)
