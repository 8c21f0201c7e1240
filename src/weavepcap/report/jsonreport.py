"""The JSON document of an analysis (format_version 1, docs/contracts.md): to a string or a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from weavepcap.api import Analysis


def render_json(analysis: Analysis, indent: int | None = 2) -> str:
    return analysis.to_json(indent=indent)


def write_json(analysis: Analysis, out_path: str | Path) -> None:
    """Write atomically enough: a half-written file never replaces a good one."""
    out = Path(out_path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_json(analysis) + "\n", encoding="utf-8")
    tmp.replace(out)
