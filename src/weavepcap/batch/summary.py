"""The batch summary: one row per group as CSV and Parquet, and a self-contained index.html."""

from __future__ import annotations

import base64
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from weavepcap import __version__

# Column → dtype, in file order; `status` (done / resumed / failed) and `seconds` describe this run.
SUMMARY_COLUMNS: dict[str, str] = {
    "group": "string",
    "captures": "Int64",
    "hosts": "string",
    "frames": "Int64",
    "first_time": "string",  # ISO-8601 UTC of the earliest frame
    "last_time": "string",
    "span_s": "Float64",
    "root_cause": "string",
    "confidence": "Float64",
    "headline": "string",
    "is_fault": "boolean",
    "error": "string",  # one line; empty when the group was analysed
    "report": "string",  # relative link to the group's report.html
    "status": "string",
    "seconds": "Float64",
}
FAILED = "failed"  # the verdict label counted for groups without an analysis

_INDEX_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>weavepcap batch: {{ groups|length }} groups</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right}
td.nw{white-space:nowrap}
tr.failed td{background:#fdecea}
.err{color:#a40000;font-family:monospace}
code{font-size:90%}
</style></head><body>
<h1>weavepcap batch</h1>
<p>{{ groups|length }} groups, {{ failed }} failed · weavepcap {{ version }} · generated {{ generated }}</p>
<h2>Verdicts</h2>
<table><thead><tr><th>root cause</th><th>groups</th></tr></thead><tbody>
{% for verdict, count in verdict_counts %}<tr><td><code>{{ verdict }}</code></td><td class="num">{{ count }}</td></tr>
{% endfor %}</tbody></table>
{% if plot %}<h2>Verdicts over time</h2>
<p>Each dot is a group at the time of its first frame; red when the verdict is a fault.</p>
<img alt="root cause of each group by the time of its first frame" src="{{ plot }}">{% endif %}
<h2>Groups</h2>
<table><thead><tr><th>group</th><th>captures</th><th>hosts</th><th>frames</th><th>first frame</th>
<th>span&nbsp;s</th><th>root cause</th><th>confidence</th><th>headline / error</th></tr></thead><tbody>
{% for g in groups %}<tr{% if g.error %} class="failed"{% endif %}>
<td class="nw">{% if g.href %}<a href="{{ g.href }}">{{ g.group }}</a>{% else %}{{ g.group }}{% endif %}</td>
<td class="num">{{ g.captures }}</td><td>{{ g.hosts }}</td><td class="num">{{ g.frames }}</td>
<td class="nw">{{ g.first_time }}</td><td class="num">{{ g.span }}</td><td class="nw"><code>{{ g.root_cause }}</code></td>
<td class="num">{{ g.confidence }}</td>
<td>{% if g.error %}<span class="err">{{ g.error }}</span>{% else %}{{ g.headline }}{% endif %}</td></tr>
{% endfor %}</tbody></table>
</body></html>
"""


def summary_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The summary table, one row per group sorted by group name, typed as SUMMARY_COLUMNS says."""
    frame = pd.DataFrame([{column: row.get(column) for column in SUMMARY_COLUMNS} for row in rows],
                         columns=list(SUMMARY_COLUMNS))
    frame = frame.astype(SUMMARY_COLUMNS)
    return frame.sort_values("group", kind="stable").reset_index(drop=True)


def write_summary(frame: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """summary.csv and summary.parquet under out_dir."""
    csv_path = out_dir / "summary.csv"
    parquet_path = out_dir / "summary.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path


def verdict_label(row: pd.Series) -> str:
    if isinstance(row["error"], str) and row["error"]:
        return FAILED
    return str(row["root_cause"]) if isinstance(row["root_cause"], str) and row["root_cause"] else "none"


def verdict_plot(frame: pd.DataFrame) -> str | None:
    """PNG data URI: each analysed group's root cause against the time of its first frame (None if no times)."""
    times = pd.to_datetime(frame["first_time"], utc=True, errors="coerce", format="ISO8601")
    labels = frame.apply(verdict_label, axis=1)
    keep = times.notna() & (labels != FAILED)
    if not keep.any():
        return None
    categories = sorted(set(labels[keep]))
    position = {name: i for i, name in enumerate(categories)}
    figure = Figure(figsize=(8, 1.2 + 0.35 * len(categories)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    fault = frame["is_fault"].fillna(False).astype(bool)[keep]
    colours = ["#c0392b" if f else "#7f8c8d" for f in fault]  # red: a fault; grey: healthy or no verdict
    axes.scatter(times[keep].dt.tz_localize(None), [position[v] for v in labels[keep]], s=36, alpha=0.85, c=colours)
    axes.set_yticks(range(len(categories)), categories)
    axes.set_ylim(-0.6, len(categories) - 0.4)
    axes.set_xlabel("first frame of the group (UTC)")
    axes.grid(axis="x", alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _text(value: Any, fmt: str = "{}") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return fmt.format(value)


def write_index(frame: pd.DataFrame, out_dir: Path, *, generated: datetime | None = None) -> Path:
    """index.html: verdict counts, the verdicts-over-time plot and a link to every group's report.

    Everything that comes from captures or file names goes through Jinja2's autoescape.
    """
    labels = frame.apply(verdict_label, axis=1) if len(frame) else pd.Series(dtype=str)
    counts = Counter(labels)
    groups = [
        {
            "group": row["group"],
            "href": quote(str(row["report"])) if isinstance(row["report"], str) and not _text(row["error"]) else None,
            "captures": _text(row["captures"]),
            "hosts": _text(row["hosts"]),
            "frames": _text(row["frames"], "{:,}"),
            "first_time": _text(row["first_time"])[:19].replace("T", " "),
            "span": _text(row["span_s"], "{:.1f}"),
            "root_cause": _text(row["root_cause"]),
            "confidence": _text(row["confidence"], "{:.2f}"),
            "headline": _text(row["headline"]),
            "error": _text(row["error"]),
        }
        for _, row in frame.iterrows()
    ]
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = environment.from_string(_INDEX_TEMPLATE).render(
        groups=groups,
        failed=counts.get(FAILED, 0),
        verdict_counts=sorted(counts.items(), key=lambda item: (-item[1], item[0])),
        plot=verdict_plot(frame) if len(frame) else None,
        version=__version__,
        generated=(generated or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
