"""The `weavepcap` command line: a thin typer shell that registers one module per command."""

from __future__ import annotations

import typer

from weavepcap import __version__
from weavepcap.commands import analyze as analyze_command
from weavepcap.commands import batch as batch_command
from weavepcap.commands import classify as classify_command
from weavepcap.commands import report as report_command

app = typer.Typer(
    name="weavepcap",
    help="Pcap forensics for Weave Net overlay incidents: classify traffic, diagnose the root cause, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"weavepcap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Pcap forensics for Weave Net overlay incidents."""


app.command("classify")(classify_command.command)
app.command("analyze")(analyze_command.command)
app.command("report")(report_command.command)
app.command("batch")(batch_command.command)


def main() -> None:
    """Console-script entry point."""
    app()
