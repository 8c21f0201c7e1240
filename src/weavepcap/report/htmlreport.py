"""The HTML incident report: one self-contained, escaped file rendered from the analysis JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from weavepcap.errors import WeavepcapError
from weavepcap.report import plots
from weavepcap.report.matrix import path_matrix
from weavepcap.runs import collapse

SUPPORTED_FORMAT_VERSIONS = frozenset({1})
STORY_LIMIT = 500  # story rows (runs of events) shown; the JSON keeps every event
TEMPLATE = "report.html.j2"
SORT_SCRIPT = "sort.js"


class AnalysisFileError(WeavepcapError):
    """A saved analysis that cannot be rendered: unreadable, not JSON, or an unsupported format_version."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class Figure:
    """One embedded plot: the PNG written with --plots and its data URI in the page."""

    file_name: str
    title: str
    description: str
    png: bytes

    width: int = round(plots.FIG_WIDTH_IN * plots.DPI)
    height: int = round(plots.FIG_HEIGHT_IN * plots.DPI)

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def load_analysis(path: str | Path) -> dict[str, Any]:
    """Read a saved `weavepcap analyze --format json` document; one-line AnalysisFileError if unusable."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalysisFileError(shown, f"cannot read the analysis: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisFileError(shown, f"not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    check_document(doc, shown)
    return doc


def check_document(doc: Any, where: str = "analysis") -> None:
    """Refuse anything that is not an analysis document of a format version this report knows."""
    if not isinstance(doc, dict):
        raise AnalysisFileError(where, "not an analysis document (expected a JSON object)")
    version = doc.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_FORMAT_VERSIONS))
        raise AnalysisFileError(where, f"unsupported format_version {version!r} (this weavepcap reads {supported})")
    if not isinstance(doc.get("verdict"), dict):
        raise AnalysisFileError(where, "not an analysis document (no verdict object)")


@cache
def _environment() -> jinja2.Environment:
    # Autoescape everything: host names, nicknames and messages come from packets and are untrusted.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("weavepcap.report", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # a missing optional field shows as a dash
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(percent=_percent, seconds=_seconds, value=_value, listing=_list, anchor=_anchor, when=_when)
    return env


def _sort_script() -> str:
    return _environment().loader.get_source(_environment(), SORT_SCRIPT)[0]  # type: ignore[union-attr]


def _csp(script: str) -> str:
    # Defence in depth: even a page that escaped wrongly could neither run injected script nor fetch
    # anything; only our own inline script (by hash), inline style and data: images are allowed.
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _percent(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{100.0 * float(value):.0f} %"
    return "—"


def _seconds(value: Any) -> str:
    """A clock offset or a span in seconds, at a precision a reader can use (ms below a second)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    if abs(value) < 1.0:
        return f"{1000.0 * value:+.1f} ms" if value else "0 ms"
    return f"{value:+.3f} s"


def _value(value: Any) -> str:
    """Any JSON value as plain text for a table cell (escaping is the template's job)."""
    if value is None or isinstance(value, jinja2.Undefined):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | str):
        return f"{value:,}" if isinstance(value, int) else str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _list(values: Any) -> str:
    if not values or isinstance(values, jinja2.Undefined):
        return "—"
    if isinstance(values, list | tuple):
        return ", ".join(_value(v) for v in values)
    return _value(values)


def _when(value: Any) -> str:
    """An ISO-8601 time with a space for its `T`, so a narrow column can wrap between date and time."""
    text = _value(value)
    return text.replace("T", " ", 1) if len(text) > 10 and text[4] == "-" and text[10] == "T" else text


def _anchor(rule_id: Any) -> str:
    """An element id from a rule id: only [a-z0-9-] survive, so the id is safe and stable."""
    text = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "-") else "-" for ch in str(rule_id).lower())
    return "rule-" + text.strip("-")


def figures(doc: Mapping[str, Any]) -> list[Figure]:
    """The report's plots for an analysis, in display order."""
    return [Figure(*parts) for parts in plots.build_all(doc)]


def render_html(doc: Mapping[str, Any], figs: list[Figure] | None = None) -> str:
    """The whole report as one HTML string (plots embedded as data URIs)."""
    check_document(doc)
    env = _environment()
    script = _sort_script()
    timeline = sorted(doc.get("timeline") or [], key=lambda e: (e.get("t") is None, e.get("t") or 0.0))
    # Repeated events (the same event on the same host and capture) are one row, expandable to the single events.
    runs = collapse(timeline)
    for run in runs:
        run["events"] = [timeline[i] for i in run["members"]]
    tool = doc.get("tool") or {}
    matrix_hosts, matrix_cells = path_matrix(doc.get("paths") or [], [str(h.get("name")) for h in doc.get("hosts") or []])
    return env.get_template(TEMPLATE).render(
        matrix_hosts=matrix_hosts,
        matrix_cells=matrix_cells,
        doc=doc,
        verdict=doc["verdict"],
        tool_name=tool.get("name", "weavepcap"),
        tool_version=tool.get("version", "?"),
        generated_at=doc.get("generated_at") or "unknown",
        hosts=doc.get("hosts") or [],
        captures=doc.get("captures") or [],
        paths=doc.get("paths") or [],
        findings=doc.get("findings") or [],
        ruled_out=doc.get("ruled_out") or [],
        caveats=doc.get("caveats") or [],
        rules=doc.get("rules") or [],
        story=runs[:STORY_LIMIT],
        story_hidden=max(0, len(runs) - STORY_LIMIT),
        story_events=len(timeline),
        figures=figures(doc) if figs is None else figs,
        csp=_csp(script),
        sort_script=script,
    )


def _atomic_write(path: Path, data: bytes) -> None:
    # Write beside the target then rename, so a failed run never leaves half a report behind.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the report from the reviewers it is for
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_html(doc: Mapping[str, Any], out_path: str | Path, plots_dir: str | Path | None = None) -> None:
    """Write the report to `out_path`; with `plots_dir`, also each plot as a PNG file there."""
    figs = figures(doc)
    html = render_html(doc, figs)
    if plots_dir is not None:
        _write_figures(figs, Path(plots_dir))
    try:
        _atomic_write(Path(out_path), html.encode("utf-8"))
    except OSError as exc:
        raise AnalysisFileError(str(out_path), f"cannot write the report: {exc.strerror or exc}") from None


def write_plots(doc: Mapping[str, Any], plots_dir: str | Path) -> list[Path]:
    """Write only the plots, as PNG files in `plots_dir`; returns their paths in report order."""
    return _write_figures(figures(doc), Path(plots_dir))


def _write_figures(figs: list[Figure], plots_dir: Path) -> list[Path]:
    written = []
    for fig in figs:
        path = plots_dir / fig.file_name
        try:
            _atomic_write(path, fig.png)
        except OSError as exc:
            raise AnalysisFileError(str(path), f"cannot write the plot: {exc.strerror or exc}") from None
        written.append(path)
    return written
