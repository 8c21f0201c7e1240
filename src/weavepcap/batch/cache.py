"""Resume keys: a group's content hash (captures + tool version + settings) and the record stored beside its outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from weavepcap import __version__
from weavepcap.settings import Settings

HASH_BLOCK = 1024 * 1024
RECORD_NAME = ".batch.json"  # in each group's output directory: key + summary row of the last run
ANALYSIS_NAME = "analysis.json"
REPORT_NAME = "report.html"
RECORD_VERSION = 1


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, read in bounded blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def settings_fingerprint(settings: Settings) -> dict[str, Any]:
    """The settings that can change an analysis, as canonical JSON-able values.

    Archive limits are left out: they decide whether an archive is read, not what its captures mean.
    """
    values: dict[str, Any] = {}
    for item in dataclasses.fields(settings):
        if item.name.startswith("archive_"):
            continue
        value = getattr(settings, item.name)
        values[item.name] = sorted(value) if isinstance(value, (set, frozenset)) else value
    return values


def group_key(captures: Iterable[tuple[str | None, str]], settings: Settings, version: str = __version__) -> str:
    """sha256 over (host, content digest) of each capture, sorted, plus tool version and settings.

    File names and locations are not part of it: moving an incident folder does not redo it.
    """
    document = {
        "version": version,
        "settings": settings_fingerprint(settings),
        "captures": sorted([host or "", digest] for host, digest in captures),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_json_atomic(path: Path, document: Any) -> None:
    """Write JSON to a temporary name and rename it, so a killed run never leaves half a file."""
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def write_record(group_dir: Path, key: str | None, row: dict[str, Any]) -> None:
    """Remember what this run produced for the group (a failure too, so the summary can be rebuilt)."""
    group_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(group_dir / RECORD_NAME, {"record_version": RECORD_VERSION, "key": key, "row": row})


def done_row(group_dir: Path, key: str) -> dict[str, Any] | None:
    """The stored summary row when the group was analysed successfully with this key, else None."""
    try:
        record = json.loads((group_dir / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("record_version") != RECORD_VERSION or record.get("key") != key:
        return None
    row = record.get("row")
    if not isinstance(row, dict) or row.get("error"):
        return None
    if not (group_dir / ANALYSIS_NAME).is_file() or not (group_dir / REPORT_NAME).is_file():
        return None
    return row
