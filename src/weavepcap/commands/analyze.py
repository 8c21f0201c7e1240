"""`weavepcap analyze`: captures of one or more hosts → one timeline → root-cause verdict, evidence and fix."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from weavepcap.commands._common import one_line_errors, parse_specs, progress_bar
from weavepcap.errors import ExitCode, UsageError
from weavepcap.settings import Settings

FORMATS = ("text", "json")
TIMELINE_SUFFIXES = (".csv", ".parquet")
PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # smaller files finish before a bar would help


def parse_clock_offsets(values: list[str]) -> dict[str, float]:
    """`HOST=SECONDS` pairs → {host: seconds}; one-line usage error on anything else."""
    out: dict[str, float] = {}
    for value in values:
        host, sep, seconds = value.partition("=")
        if not sep or not host:
            raise UsageError(f"--clock-offset {value!r}: expected HOST=SECONDS, e.g. host-b=2.5")
        try:
            out[host] = float(seconds)
        except ValueError:
            raise UsageError(f"--clock-offset {value!r}: {seconds!r} is not a number of seconds") from None
    return out


@one_line_errors
def command(
    captures: Annotated[list[str], typer.Argument(
        help="Captures: PATH or HOST=PATH (several per host, e.g. its eth0 and lo).", metavar="CAPTURE...")],
    output_format: Annotated[str, typer.Option("--format", help="text (summary) or json (the full document).")] = "text",
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write the JSON document to FILE.",
                                                   metavar="FILE")] = None,
    timeline: Annotated[Path | None, typer.Option(
        "--timeline", help="Write the event timeline to FILE.csv or FILE.parquet.", metavar="FILE")] = None,
    clock_offset: Annotated[list[str] | None, typer.Option(
        "--clock-offset", help="Force a host's clock offset: HOST=SECONDS its clock is ahead (repeatable).",
        metavar="HOST=SECONDS")] = None,
    fail_on_fault: Annotated[bool, typer.Option(
        "--fail-on-fault", help="Exit 1 when the verdict is a fault (for scripts).")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML incident report to FILE.",
                                              metavar="FILE")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Also write the report's plots as PNG files to DIR.",
                                               metavar="DIR")] = None,
    weave_port: Annotated[int, typer.Option(
        "--weave-port", help="Weave's TCP control / UDP sleeve port; fast datapath VXLAN uses it + 1.")] = 6783,
) -> None:
    """Diagnose a Weave Net incident from the hosts' captures: verdict, evidence frames, fix."""
    if output_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {output_format!r}")
    if timeline is not None and timeline.suffix.lower() not in TIMELINE_SUFFIXES:
        raise UsageError(f"--timeline {timeline}: the file name must end in .csv or .parquet")
    if not 0 < weave_port < 65535:
        raise UsageError(f"--weave-port {weave_port} is out of range (1..65534)")
    offsets = parse_clock_offsets(clock_offset or [])
    specs = parse_specs(captures)
    if sum(1 for s in specs if s.path == "-") > 1:
        raise UsageError("standard input (-) can be named only once")
    settings = Settings(weave_port=weave_port)

    from weavepcap.api import analyze_inputs, keep_for, scan_input
    from weavepcap.report.jsonreport import write_json
    from weavepcap.report.textreport import render_text

    inputs = []
    keep = keep_for(specs)
    for spec in specs:
        with progress_bar(spec, PROGRESS_MIN_BYTES) as progress:
            inputs.append(scan_input(spec, settings, keep, progress))
    unknown = set(offsets) - {i.record.host for i in inputs}
    if unknown:
        raise UsageError(f"--clock-offset names no host of these captures: {', '.join(sorted(unknown))}")
    analysis = analyze_inputs(inputs, clock_offsets=offsets, settings=settings)
    doc = analysis.to_dict()

    if output_format == "json":
        typer.echo(analysis.to_json())
    else:
        typer.echo(render_text(doc), nl=False)
    if json_file is not None:
        write_json(analysis, json_file)
    if timeline is not None:
        table = analysis.timeline_table()
        if timeline.suffix.lower() == ".parquet":
            table.to_parquet(timeline, index=False)
        else:
            table.to_csv(timeline, index=False)
        print(f"weavepcap: wrote {len(table)} events to {timeline}", file=sys.stderr)
    if html is not None or plots is not None:
        from weavepcap.report.htmlreport import write_html, write_plots

        if html is not None:
            write_html(doc, html, plots_dir=plots)
        elif plots is not None:  # plots without the page
            write_plots(doc, plots)
    if fail_on_fault and analysis.verdict.is_fault:
        raise typer.Exit(code=int(ExitCode.FAULT_FOUND))


