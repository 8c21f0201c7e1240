"""`weavepcap report`: render a saved JSON analysis again as the HTML incident report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weavepcap.commands._common import one_line_errors


@one_line_errors
def command(
    analysis: Annotated[Path, typer.Argument(help="A saved analysis: the output of `weavepcap analyze --format json`.")],
    html: Annotated[Path, typer.Option("--html", help="Write the self-contained HTML report to this file.")],
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Also write the four plots as PNG files into this directory.")
    ] = None,
) -> None:
    """Render a saved JSON analysis as one self-contained HTML incident report (plots embedded)."""
    # Imported here: matplotlib behind it costs every other command ~0.3 s of start-up.
    from weavepcap.report.htmlreport import AnalysisFileError, load_analysis, write_html

    doc = load_analysis(analysis)
    try:
        write_html(doc, html, plots_dir=plots)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A hand-edited or truncated document: say so in one line rather than show a traceback.
        raise AnalysisFileError(str(analysis), f"malformed analysis document ({type(exc).__name__}: {exc})") from None
    typer.echo(f"wrote {html}" + (f" and 4 plots in {plots}" if plots is not None else ""), err=True)
