"""`weavepcap batch`: analyse many incidents (directories, globs, archives) on a local pool or a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weavepcap.commands._common import err_console, one_line_errors
from weavepcap.errors import ExitCode


@one_line_errors
def command(
    paths: Annotated[list[str], typer.Argument(
        metavar="PATH...",
        help="Directories (recursive), glob patterns, tar/tar.gz/tgz/zip archives or captures (compressed too).",
    )],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Output directory: one folder per group, summary, index.html.",
    )],
    group_by: Annotated[str | None, typer.Option(
        "--group-by",
        help="Pattern on each capture's relative path, e.g. '{incident}/{host}.pcap': {host} names the host, "
             "other {fields} form the group name, * and ** are wildcards. Default: one group per directory.",
    )] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Local worker processes (default: min(cores, groups)).",
    )] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", metavar="tcp://HOST:8786",
        help="Run the groups on this existing dask.distributed scheduler instead of locally "
             "(workers must see the inputs and --out at the same paths).",
    )] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo groups whose results are already in --out.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bar and no closing summary line.",
    )] = False,
) -> None:
    """Analyse many incidents; exit code 4 when any group failed (its error is in summary.csv)."""
    from weavepcap.batch import run_batch

    result = run_batch(
        paths, out, group_by=group_by, workers=workers, scheduler=scheduler, force=force,
        progress=not quiet, console=err_console,
    )
    if not quiet:
        for note in result.skipped_inputs:
            err_console.print(f"skipped: {note}", markup=False, soft_wrap=True)
        groups = len(result.summary)
        if not groups:
            err_console.print("no captures found in the inputs (.pcap, .pcapng, .cap, compressed or in archives)",
                              markup=False, soft_wrap=True)
        err_console.print(
            f"{groups} groups: {result.count('done')} analysed, {result.count('resumed')} already done, "
            f"{result.failed} failed → {result.out_dir / 'index.html'}",
            markup=False, soft_wrap=True,
        )
    if result.failed:
        raise typer.Exit(code=int(ExitCode.PARTIAL_FAILURE))
