"""Safe extraction of tar/zip archives of captures: no path traversal, no links, bounded against bombs."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from weavepcap.errors import ExitCode, WeavepcapError
from weavepcap.settings import DEFAULT_SETTINGS, Settings

COPY_BLOCK = 1024 * 1024
# The ratio limit applies only past this much output: a tiny tar is 10 KiB of zero padding that
# compresses to a few hundred bytes, which is a high ratio but no bomb.
RATIO_GRACE_BYTES = 4 * 1024 * 1024
TAR_BLOCK = 512  # every tar member costs at least one header block of decompressed input

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst")
ZIP_SUFFIXES = (".zip",)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveError(WeavepcapError):
    """An archive that cannot be read, or that breaks a safety rule or a size limit; fails its group."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, path: str, message: str, *, member: str | None = None) -> None:
        self.path = path
        self.member = member
        where = f" (member {member!r})" if member is not None else ""
        super().__init__(f"{path}{where}: {message}")


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one archive may expand to (defaults come from Settings)."""

    max_members: int
    max_member_bytes: int
    max_total_bytes: int
    max_ratio: float

    @classmethod
    def from_settings(cls, settings: Settings = DEFAULT_SETTINGS) -> ArchiveLimits:
        return cls(
            max_members=settings.archive_max_members,
            max_member_bytes=settings.archive_max_member_bytes,
            max_total_bytes=settings.archive_max_total_bytes,
            max_ratio=settings.archive_max_ratio,
        )


def archive_kind(path: str | Path) -> str | None:
    """"tar" or "zip" when the file name says it is an archive, else None."""
    name = str(path).lower()
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    if name.endswith(ZIP_SUFFIXES):
        return "zip"
    return None


def archive_stem(path: str | Path) -> str:
    """The archive's file name without its archive suffix (`bundle.tar.gz` → `bundle`)."""
    name = Path(path).name
    for suffix in sorted(TAR_SUFFIXES + ZIP_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def safe_member_path(name: str) -> PurePosixPath | None:
    """The member's path relative to the extraction root, or None for the root itself.

    Raises ValueError for absolute names, drive letters and any `..` component (backslashes count as
    separators, since zips written on Windows use them).
    """
    text = name.replace("\\", "/")
    if text.startswith("/") or _WINDOWS_DRIVE.match(text):
        raise ValueError("absolute member name")
    if "\x00" in text:
        raise ValueError("NUL byte in member name")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("member name climbs out of the archive with '..'")
    return PurePosixPath(*parts) if parts else None


def _link_escapes(member: PurePosixPath | None, target: str, *, hard: bool) -> bool:
    """True when a link target points outside the extraction root (hard links resolve from the root)."""
    text = target.replace("\\", "/")
    if text.startswith("/") or _WINDOWS_DRIVE.match(text):
        return True
    base = [] if hard or member is None else list(member.parent.parts)
    depth = len(base)
    for part in text.split("/"):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False


class _Extractor:
    """Writes members under one root while counting what the limits count."""

    def __init__(self, archive: Path, root: Path, limits: ArchiveLimits, shown: str) -> None:
        self.archive = archive
        self.shown = shown
        self.root = root
        self.root_real = root.resolve()
        self.limits = limits
        self.archive_bytes = max(archive.stat().st_size, 1)
        self.members = 0
        self.total = 0
        self.extracted: list[str] = []

    def fail(self, message: str, member: str | None = None) -> ArchiveError:
        return ArchiveError(self.shown, message, member=member)

    def count_member(self, name: str, declared_size: int) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise self.fail(f"more than {self.limits.max_members} members (archive_max_members)")
        if declared_size > self.limits.max_member_bytes:
            raise self.fail(
                f"member of {declared_size} bytes exceeds the {self.limits.max_member_bytes}-byte limit "
                "(archive_max_member_bytes)", name)
        self.add_bytes(name, declared_size)

    def add_bytes(self, name: str, size: int) -> None:
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise self.fail(
                f"expands to more than {self.limits.max_total_bytes} bytes (archive_max_total_bytes)", name)
        if self.total > RATIO_GRACE_BYTES and self.total > self.limits.max_ratio * self.archive_bytes:
            raise self.fail(
                f"expands more than {self.limits.max_ratio:g} times its size: a decompression bomb? "
                "(archive_max_ratio)", name)

    def target(self, rel: PurePosixPath, name: str) -> Path:
        path = self.root.joinpath(*rel.parts)
        # Belt and braces: nothing extracted so far is a link, but check where the path really lands.
        if not path.parent.resolve().is_relative_to(self.root_real):
            raise self.fail("member would be written outside the extraction directory", name)
        return path

    def copy(self, source: IO[bytes], rel: PurePosixPath, name: str, declared_size: int) -> None:
        """Stream one member to disk; the byte count is checked as it grows, not trusted from the header."""
        path = self.target(rel, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(path, "wb") as out:
            while block := source.read(COPY_BLOCK):
                written += len(block)
                if written > self.limits.max_member_bytes:
                    raise self.fail(
                        f"member expands past the {self.limits.max_member_bytes}-byte limit "
                        "(archive_max_member_bytes)", name)
                if written > declared_size:
                    self.add_bytes(name, len(block))
                out.write(block)
        self.extracted.append(rel.as_posix())


@contextmanager
def _tar_stream(archive: Path) -> Iterator[tarfile.TarFile]:
    """Open a tar in streaming mode (one forward pass, any compression tarfile knows, plus zstd)."""
    raw = open(archive, "rb")
    try:
        if archive.name.lower().endswith((".tar.zst", ".tzst")):
            import zstandard

            reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw)  # type: ignore[assignment]
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                yield tar
        else:
            with tarfile.open(fileobj=raw, mode="r|*") as tar:
                yield tar
    finally:
        raw.close()


def _extract_tar(ex: _Extractor, keep: Callable[[str], bool]) -> None:
    with _tar_stream(ex.archive) as tar:
        for info in tar:
            try:
                rel = safe_member_path(info.name)
            except ValueError as exc:
                raise ex.fail(str(exc), info.name) from None
            if info.issym() or info.islnk():
                if _link_escapes(rel, info.linkname, hard=info.islnk()):
                    raise ex.fail(f"link pointing outside the archive ({info.linkname!r})", info.name)
                ex.count_member(info.name, 0)
                continue  # links are never created: a capture is always a regular member
            ex.count_member(info.name, info.size if info.isfile() else 0)
            if not info.isfile() or rel is None or not keep(rel.as_posix()):
                continue
            source = tar.extractfile(info)
            if source is not None:
                ex.copy(source, rel, info.name, info.size)


def _extract_zip(ex: _Extractor, keep: Callable[[str], bool]) -> None:
    with zipfile.ZipFile(ex.archive) as zf:
        infos = zf.infolist()
        if len(infos) > ex.limits.max_members:
            raise ex.fail(f"more than {ex.limits.max_members} members (archive_max_members)")
        declared = sum(i.file_size for i in infos)
        if declared > ex.limits.max_total_bytes:
            raise ex.fail(f"declares {declared} bytes, more than {ex.limits.max_total_bytes} (archive_max_total_bytes)")
        for info in infos:
            try:
                rel = safe_member_path(info.filename)
            except ValueError as exc:
                raise ex.fail(str(exc), info.filename) from None
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                target = zf.read(info)[:4096].decode("utf-8", "replace") if info.file_size < 4096 else "/"
                if _link_escapes(rel, target, hard=False):
                    raise ex.fail(f"link pointing outside the archive ({target!r})", info.filename)
                ex.count_member(info.filename, 0)
                continue
            if (info.file_size > RATIO_GRACE_BYTES
                    and info.file_size > ex.limits.max_ratio * max(info.compress_size, 1)):
                raise ex.fail(
                    f"member expands more than {ex.limits.max_ratio:g} times: a decompression bomb? "
                    "(archive_max_ratio)", info.filename)
            ex.count_member(info.filename, info.file_size)
            if info.is_dir() or rel is None or not keep(rel.as_posix()):
                continue
            with zf.open(info) as source:
                ex.copy(source, rel, info.filename, info.file_size)


def extract_archive(
    archive: str | Path,
    dest: str | Path,
    limits: ArchiveLimits,
    keep: Callable[[str], bool] = lambda _name: True,
    *,
    shown: str | None = None,
) -> list[str]:
    """Extract the members `keep` accepts into `dest` (created whole or not at all); their relative paths.

    Every member's name and link target is checked, and every member counts toward the limits, even
    the ones not kept. On any violation or read error nothing is left behind and ArchiveError says why,
    naming the archive as `shown` (default: its path).
    """
    archive = Path(archive)
    dest = Path(dest)
    shown = shown or str(archive)
    kind = archive_kind(archive)
    if kind is None:
        raise ArchiveError(shown, "not a tar or zip archive (by its name)")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    ex = _Extractor(archive, partial, limits, shown)
    try:
        if kind == "tar":
            _extract_tar(ex, keep)
        else:
            _extract_zip(ex, keep)
    except ArchiveError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as exc:  # tarfile, zipfile, zlib, lzma, bz2 and zstandard each raise their own kinds
        shutil.rmtree(partial, ignore_errors=True)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArchiveError(shown, f"unreadable archive: {reason}") from None
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(partial, dest)
    return sorted(set(ex.extracted))
