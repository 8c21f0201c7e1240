"""Batch inputs → incident groups: walk directories, expand globs, extract archives, apply --group-by."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from weavepcap.batch.archive import ArchiveError, ArchiveLimits, archive_kind, archive_stem, extract_archive
from weavepcap.batch.cache import file_digest
from weavepcap.errors import UsageError
from weavepcap.settings import DEFAULT_SETTINGS, Settings

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
WORK_DIR = ".work"  # under --out: extracted archive members
_GLOB_MAGIC = re.compile(r"[*?\[]")


def strip_compression(name: str) -> str:
    """`host.pcap.gz` → `host.pcap`; other names unchanged."""
    lower = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_capture_name(name: str) -> bool:
    """A pcap/pcapng file name, possibly compressed (what a directory walk picks up)."""
    return strip_compression(name).lower().endswith(CAPTURE_SUFFIXES)


def capture_stem(name: str) -> str:
    """`host-a-eth0.pcapng.zst` → `host-a-eth0`."""
    base = strip_compression(Path(name).name)
    for suffix in CAPTURE_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)] or base
    return base


@dataclass(frozen=True)
class CaptureRef:
    """One capture of a group: where the file is, the host it belongs to if known, and its display path."""

    path: str  # absolute path the workers read
    rel: str  # path relative to its input root (inside an archive: relative to the archive)
    host: str | None = None
    shown: str = ""  # how messages name it: `rel`, or `archive.tar.gz:member` for archive members


@dataclass
class Group:
    """Captures analysed together as one incident; `error` set when the group failed before analysis."""

    name: str
    captures: list[CaptureRef] = field(default_factory=list)
    error: str | None = None
    origin: str = ""  # the input it came from: groups of different inputs never merge


@dataclass
class Discovery:
    """What the inputs turned into: the groups, and the notes on files left out."""

    groups: list[Group]
    skipped: list[str]


class GroupBy:
    """A `--group-by` pattern on a capture's relative path.

    `{host}` names the host (→ HOST=PATH), `*` is any text inside one path component, `**` any number
    of directories, `{_}` or `{_name}` is matched and ignored, and every other `{field}` is part of the
    group name (joined with `/` in pattern order). A compressed capture also matches without its
    compression suffix, so `{incident}/{host}.pcap` matches `x/a.pcap.gz`.
    """

    _token = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|\*\*/|\*\*|\*|\?")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.group_fields: list[str] = []
        parts: list[str] = []
        seen: set[str] = set()
        position = 0
        anonymous = 0
        for match in self._token.finditer(pattern):
            parts.append(re.escape(pattern[position : match.start()]))
            position = match.end()
            token = match.group(0)
            name = match.group(1)
            if name is not None:
                if name.startswith("_"):
                    anonymous += 1
                    name = f"_anon{anonymous}"
                elif name in seen:
                    raise UsageError(f"--group-by {pattern!r}: field {{{name}}} appears twice")
                elif name != "host":
                    self.group_fields.append(name)
                seen.add(name)
                parts.append(f"(?P<{name}>[^/]+?)")
            elif token == "**/":
                parts.append("(?:.*/)?")
            elif token == "**":
                parts.append(".*")
            elif token == "*":
                parts.append("[^/]*")
            else:
                parts.append("[^/]")
        parts.append(re.escape(pattern[position:]))
        self.regex = re.compile("".join(parts))
        self.has_host = "host" in seen

    def match(self, rel: str) -> tuple[str | None, str | None] | None:
        """(group name or None for "by directory", host or None), or None when the path does not match."""
        for candidate in (rel, strip_compression(rel)):
            found = self.regex.fullmatch(candidate)
            if found:
                group = "/".join(found.group(f) for f in self.group_fields) or None
                return group, found.group("host") if self.has_host else None
        return None


class _Collector:
    """Accumulates captures into named groups, keeping groups of different inputs apart."""

    def __init__(self, out_dir: Path, group_by: GroupBy | None, settings: Settings) -> None:
        self.out_dir = out_dir.resolve()
        self.work_dir = self.out_dir / WORK_DIR
        self.group_by = group_by
        self.limits = ArchiveLimits.from_settings(settings)
        self.groups: dict[str, Group] = {}
        self.skipped: list[str] = []

    def group(self, name: str, origin: str) -> Group:
        existing = self.groups.get(name)
        if existing is None or existing.origin == origin:
            if existing is None:
                self.groups[name] = Group(name=name, origin=origin)
            return self.groups[name]
        for n in range(2, 10_000):
            alternative = f"{name}~{n}"
            found = self.groups.get(alternative)
            if found is None or found.origin == origin:
                return self.group(alternative, origin)
        raise UsageError(f"too many inputs give a group named {name!r}")

    def add_capture(self, path: Path, rel: str, *, prefix: str, label: str, origin: str, within: str = "") -> None:
        """File a capture under its group: by --group-by, else by its directory inside its input."""
        host: str | None = None
        by_pattern: str | None = None
        shown = f"{within}:{rel}" if within else rel
        if self.group_by is not None:
            matched = self.group_by.match(rel)
            if matched is None:
                self.skipped.append(f"{shown}: does not match --group-by {self.group_by.pattern!r}")
                return
            by_pattern, host = matched
        parent = PurePosixPath(rel).parent.as_posix()
        local = by_pattern or (parent if parent != "." else label)
        name = f"{prefix}/{local}" if prefix else local
        self.group(name, origin).captures.append(CaptureRef(path=str(path.resolve()), rel=rel, host=host, shown=shown))

    def add_lone(self, path: Path, origin: str) -> None:
        self.group(capture_stem(path.name), origin).captures.append(
            CaptureRef(path=str(path.resolve()), rel=path.name, shown=path.name))

    def add_archive(self, path: Path, *, prefix: str, origin: str) -> None:
        """Extract (once per archive content) under .work/ and file its captures; a bad archive is a failed group."""
        stem = archive_stem(path)
        group_label = f"{prefix}/{path.name}" if prefix else path.name
        try:
            digest = file_digest(path)
            dest = self.work_dir / f"{_safe_component(stem)}-{digest[:16]}"
            if dest.is_dir():
                members = sorted(
                    p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and is_capture_name(p.name))
            else:
                members = extract_archive(path, dest, self.limits, keep=lambda n: is_capture_name(PurePosixPath(n).name),
                                          shown=group_label)
        except ArchiveError as exc:
            self.group(group_label, origin).error = str(exc)
            return
        except OSError as exc:
            self.group(group_label, origin).error = f"{group_label}: cannot read archive: {exc.strerror or exc}"
            return
        if not members:
            self.skipped.append(f"{group_label}: no captures inside")
        for member in members:
            self.add_capture(dest / member, member, prefix=prefix, label=stem, origin=f"{origin}!{path.name}",
                             within=path.name)

    def walk(self, root: Path, start: Path, origin: str) -> None:
        """Every capture and archive under `start`, filed relative to `root` (the out dir is never walked)."""
        for directory, dirnames, filenames in os.walk(start):
            here = Path(directory)
            dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() != self.out_dir)
            for filename in sorted(filenames):
                self.add_file(root, here / filename, origin)

    def add_file(self, root: Path, path: Path, origin: str) -> None:
        rel = path.relative_to(root).as_posix()
        if archive_kind(path.name):
            parent = PurePosixPath(rel).parent.as_posix()
            self.add_archive(path, prefix="" if parent == "." else parent, origin=origin)
        elif is_capture_name(path.name):
            self.add_capture(path, rel, prefix="", label=_root_label(root), origin=origin)


def _safe_component(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".") or "_"


def _root_label(root: Path) -> str:
    return root.resolve().name or "root"


def _glob_root(pattern: str) -> Path:
    """The directory before the first component with a wildcard: what matches are relative to."""
    parts = Path(pattern).parts
    literal: list[str] = []
    for part in parts:
        if _GLOB_MAGIC.search(part):
            break
        literal.append(part)
    return Path(*literal) if literal else Path(".")


def discover(
    paths: list[str],
    out_dir: str | Path,
    *,
    group_by: str | None = None,
    settings: Settings = DEFAULT_SETTINGS,
) -> Discovery:
    """Turn PATH arguments (directories, globs, archives, captures) into groups, sorted by name.

    Raises UsageError for a PATH that neither exists nor matches anything.
    """
    collector = _Collector(Path(out_dir), GroupBy(group_by) if group_by else None, settings)
    for index, text in enumerate(paths):
        origin = f"#{index}"
        path = Path(text)
        if path.is_dir():
            collector.walk(path, path, origin)
        elif path.is_file():
            if archive_kind(path.name):
                collector.add_archive(path, prefix="", origin=origin)
            else:
                collector.add_lone(path, origin)  # named explicitly: read whatever it is, by content
        elif _GLOB_MAGIC.search(text):
            root = _glob_root(text)
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise UsageError(f"{text}: no file matches this pattern")
            for match in matches:
                found = Path(match)
                if found.is_dir():
                    collector.walk(root, found, origin)
                elif found.is_file():
                    collector.add_file(root, found, origin)
        else:
            raise UsageError(f"{text}: no such file or directory")
    groups = [g for _, g in sorted(collector.groups.items())]
    for group in groups:
        group.captures.sort(key=lambda c: c.rel)
    return Discovery(groups=groups, skipped=collector.skipped)
