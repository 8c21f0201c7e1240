"""Batch archives: members never land outside --out, links are refused, bombs hit the limits, bad archives fail alone."""

from __future__ import annotations

import io
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.writers import pcap_bytes
from test_batch_support import FRAME, make_incidents, stub_analyze, stub_report, tar_of, tar_with

from weavepcap.batch import run_batch
from weavepcap.batch.archive import ArchiveError, ArchiveLimits, extract_archive, safe_member_path
from weavepcap.settings import Settings as WeavepcapSettings

PCAP = pcap_bytes([FRAME] * 3)
ROOMY = ArchiveLimits(max_members=100, max_member_bytes=10**8, max_total_bytes=10**9, max_ratio=200.0)


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def files_under(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


def run(paths: list[Path], out: Path, settings: WeavepcapSettings | None = None):
    return run_batch([str(p) for p in paths], out, analyze_group=stub_analyze, render_report=stub_report,
                     workers=1, settings=settings).summary


@pytest.mark.parametrize("name", ["/etc/evil.pcap", "../evil.pcap", "a/../../evil.pcap", "C:/evil.pcap",
                                  "a\\..\\..\\evil.pcap"])
def test_member_names_that_escape_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        safe_member_path(name)


def test_harmless_member_names_are_normalised() -> None:
    assert safe_member_path("./inc/./a.pcap").as_posix() == "inc/a.pcap"
    assert safe_member_path("inc/") is not None and safe_member_path("./") is None


@pytest.mark.parametrize(("members", "needle"), [
    ([member("ok/a.pcap"), member("../../escaped.pcap")], "climbs out"),
    ([member("/escaped.pcap")], "absolute member name"),
    ([member("ok/link.pcap", tarfile.SYMTYPE, "../../../etc/passwd")], "link pointing outside"),
    ([member("ok/link.pcap", tarfile.SYMTYPE, "/etc/passwd")], "link pointing outside"),
    ([member("ok/hard.pcap", tarfile.LNKTYPE, "../outside.pcap")], "link pointing outside"),
])
def test_traversal_and_outward_links_fail_the_archive_and_write_nothing(
        tmp_path: Path, members: list[tarfile.TarInfo], needle: str) -> None:
    data = {m.name: PCAP for m in members if m.type == tarfile.REGTYPE}
    archive = tar_with(tmp_path / "evil.tar.gz", members, data)
    dest = tmp_path / "out" / ".work" / "evil"
    with pytest.raises(ArchiveError, match=needle):
        extract_archive(archive, dest, ROOMY)
    assert files_under(tmp_path) == {"evil.tar.gz", "out", "out/.work"}


def test_links_inside_the_archive_are_skipped_not_created(tmp_path: Path) -> None:
    members = [member("inc/a.pcap"), member("inc/b.pcap", tarfile.SYMTYPE, "a.pcap")]
    archive = tar_with(tmp_path / "links.tar", members, {"inc/a.pcap": PCAP}, mode="w")
    assert extract_archive(archive, tmp_path / "x", ROOMY) == ["inc/a.pcap"]
    assert not (tmp_path / "x" / "inc" / "b.pcap").exists()


def test_zip_traversal_and_zip_symlink_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inc/a.pcap", PCAP)
        zf.writestr("../../evil.pcap", PCAP)
    with pytest.raises(ArchiveError, match="climbs out"):
        extract_archive(archive, tmp_path / "x", ROOMY)
    linked = tmp_path / "link.zip"
    with zipfile.ZipFile(linked, "w") as zf:
        info = zipfile.ZipInfo("inc/a.pcap")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="link pointing outside"):
        extract_archive(linked, tmp_path / "y", ROOMY)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_bomb_like_archives_hit_each_limit(tmp_path: Path) -> None:
    zeros = bytes(6 * 1024 * 1024)  # compresses ~1000:1, like a decompression bomb
    bomb = tar_with(tmp_path / "bomb.tar.gz", [member("inc/a.pcap")], {"inc/a.pcap": PCAP + zeros})
    with pytest.raises(ArchiveError, match="times its size: a decompression bomb"):
        extract_archive(bomb, tmp_path / "a", ROOMY)  # the default ratio catches it
    small = ArchiveLimits(max_members=2, max_member_bytes=1000, max_total_bytes=1500, max_ratio=1e9)
    one_big = tar_with(tmp_path / "big.tar", [member("a.pcap")], {"a.pcap": bytes(2000)}, mode="w")
    with pytest.raises(ArchiveError, match="archive_max_member_bytes"):
        extract_archive(one_big, tmp_path / "b", small)
    two = tar_with(tmp_path / "two.tar", [member("a.pcap"), member("b.pcap")],
                   {"a.pcap": bytes(800), "b.pcap": bytes(800)}, mode="w")
    with pytest.raises(ArchiveError, match="archive_max_total_bytes"):
        extract_archive(two, tmp_path / "c", small)
    many = tar_with(tmp_path / "many.tar", [member(f"{i}.pcap") for i in range(3)],
                    {f"{i}.pcap": b"x" for i in range(3)}, mode="w")
    with pytest.raises(ArchiveError, match="archive_max_members"):
        extract_archive(many, tmp_path / "d", small)
    zbomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zbomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.pcap", PCAP + zeros)
    with pytest.raises(ArchiveError, match="decompression bomb"):
        extract_archive(zbomb, tmp_path / "e", ROOMY)
    assert not any((tmp_path / d).exists() for d in "abcde")


def test_a_zip_whose_sizes_lie_is_stopped_while_streaming(tmp_path: Path) -> None:
    archive = tmp_path / "lie.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.pcap", bytes(4000))
    raw = bytearray(archive.read_bytes())
    # Shrink the declared size in the central directory so only counting the stream can catch it.
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    limits = ArchiveLimits(max_members=5, max_member_bytes=1000, max_total_bytes=10**6, max_ratio=1e9)
    with pytest.raises(ArchiveError):
        extract_archive(archive, tmp_path / "x", limits)
    assert not (tmp_path / "x").exists()


def test_batch_records_bad_archives_as_failed_groups_and_goes_on(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    make_incidents(tmp_path / "src")
    inputs.mkdir()
    tar_of(tmp_path / "src", inputs / "good.tgz")
    tar_with(inputs / "evil.tar.gz", [member("inc/a.pcap"), member("../../pwned.pcap")],
             {"inc/a.pcap": PCAP, "../../pwned.pcap": PCAP})
    truncated = (inputs / "good.tgz").read_bytes()
    (inputs / "cut.tar.gz").write_bytes(truncated[: len(truncated) // 2])
    (inputs / "garbage.zip").write_bytes(b"PK\x03\x04 not really a zip")
    tar_with(inputs / "bomb.tar.gz", [member("inc/a.pcap")], {"inc/a.pcap": PCAP + bytes(1 << 20)})
    out = tmp_path / "out"
    summary = run([inputs], out, WeavepcapSettings(archive_max_member_bytes=512 * 1024)).set_index("group")
    errors = summary["error"].dropna().to_dict()
    assert set(errors) == {"bomb.tar.gz", "cut.tar.gz", "evil.tar.gz", "garbage.zip"}
    assert "archive_max_member_bytes" in errors["bomb.tar.gz"]
    assert "member '../../pwned.pcap'" in errors["evil.tar.gz"]
    assert "unreadable archive" in errors["cut.tar.gz"] and "unreadable archive" in errors["garbage.zip"]
    assert all(str(tmp_path) not in e and "\n" not in e for e in errors.values())
    assert summary.loc["inc-a", "frames"] == 11  # the good archive still went through
    assert not list(tmp_path.rglob("pwned.pcap"))
    assert not [p for p in (out / ".work").iterdir() if p.name.endswith(".partial")]


def test_zip_and_zstd_tar_inputs(tmp_path: Path) -> None:
    import zstandard

    src = make_incidents(tmp_path / "src")
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        tar.add(src, arcname=".")
    (tmp_path / "in.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(plain.getvalue()))
    from_zip = run([archive], tmp_path / "out-zip")
    from_zst = run([tmp_path / "in.tar.zst"], tmp_path / "out-zst")
    assert list(from_zip["group"]) == list(from_zst["group"]) == ["in", "inc-a", "inc-b", "inc-c/deep"]
    assert list(from_zip["frames"]) == list(from_zst["frames"]) == [12, 11, 3, 2]


@settings(max_examples=80, deadline=None)
@given(names=st.lists(st.text(alphabet="./\\a:C", min_size=1, max_size=12), min_size=1, max_size=4),
       link=st.text(alphabet="./a", max_size=10))
def test_random_member_names_never_land_outside(names: list[str], link: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        members = [member(n + ".pcap") for n in names] + [member("l.pcap", tarfile.SYMTYPE, link)]
        archive = tar_with(base / "fuzz.tar", members, {n + ".pcap": b"x" for n in names}, mode="w")
        dest = base / "deep" / "dest"
        try:
            extracted = extract_archive(archive, dest, ROOMY)
        except ArchiveError:
            assert files_under(base) <= {"fuzz.tar", "deep"}
            return
        outside = files_under(base) - {"fuzz.tar", "deep"} - {f"deep/{p}" for p in files_under(base / "deep")}
        assert not outside
        for rel in extracted:
            assert (dest / rel).resolve().is_relative_to(dest.resolve()) and not (dest / rel).is_symlink()
        assert all(not p.is_symlink() for p in dest.rglob("*"))
        assert all(p.resolve().is_relative_to(dest.resolve()) for p in (base / "deep").rglob("*") if p.is_file())
