"""Bad input at the command line: one line naming the file, exit 3 when nothing can be read, never a traceback."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from conftest import need_tool
from support.writers import compress, pcap_bytes, pcapng_bytes
from test_scan import gen
from typer.testing import CliRunner

from weavepcap.cli import app
from weavepcap.scan import scan_capture
from weavepcap.settings import Settings

GOOD = [gen.background_dns(1, False), gen.arp(1, gen.PEERS[0], False), gen.background_dns(2, True)]
PCAP_HEADER, RECORD_HEADER = 24, 16


def classify(path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["classify", *extra, str(path)])
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(path: Path, expected: str) -> None:
    code, out, err = classify(path)
    assert code == 3, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("weavepcap: error: ") and str(path) in lines[0], err
    assert expected in lines[0]


def with_record_length(data: bytes, record: int, length: int) -> bytes:
    """A classic pcap whose record number `record` (0-based) claims `length` captured and original bytes."""
    offset = PCAP_HEADER + sum(RECORD_HEADER + len(f) for f in GOOD[:record])
    patched = bytearray(data)
    struct.pack_into("<II", patched, offset + 8, length, length)
    return bytes(patched)


FATAL: list[tuple[str, bytes, str]] = [
    ("not-a-capture", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a pcap or pcapng capture"),
    ("empty", b"", "empty file"),
    ("truncated-header", pcap_bytes(GOOD)[:10], "truncated pcap global header"),
    ("giant-first-record", with_record_length(pcap_bytes(GOOD), 0, 0x7FFFFFFF), "byte offset 24"),
    ("corrupt-gzip", (lambda z: z[:12] + bytes(b ^ 0x55 for b in z[12:]))(compress(pcap_bytes(GOOD), "gzip")), "gzip"),
]


@pytest.mark.parametrize(("name", "data", "expected"), FATAL, ids=[f[0] for f in FATAL])
def test_unreadable_capture_is_one_line_and_exit_3(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(data)
    assert_one_line_error(path, expected)


def test_pcapng_block_with_impossible_length(tmp_path: Path) -> None:
    data = bytearray(pcapng_bytes(GOOD))
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    struct.pack_into("<I", data, shb_len + idb_len + 4, 0xFFFFFFF0)  # the first packet block
    path = tmp_path / "bad-block.pcapng"
    path.write_bytes(bytes(data))
    assert_one_line_error(path, "impossible length")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert_one_line_error(tmp_path / "nope.pcap", "cannot open")
    assert_one_line_error(tmp_path, "directory")


def damaged(tmp_path: Path, name: str, data: bytes) -> tuple[dict[str, object], str]:
    path = tmp_path / name
    path.write_bytes(data)
    code, out, err = classify(path, "--format", "json")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("weavepcap: warning: ") and str(path) in lines[0], err
    [capture] = json.loads(out)["captures"]
    return capture, lines[0]


def test_last_record_cut_short_is_damage(tmp_path: Path) -> None:
    capture, warning = damaged(tmp_path, "cut.pcap", pcap_bytes(GOOD)[:-5])
    assert capture["frames"] == 2
    [damage] = capture["damage"]
    assert damage["frame"] == 3 and damage["offset"] is not None and "cut short" in damage["message"]
    assert "frame 3" in warning


def test_giant_record_after_good_ones_is_damage(tmp_path: Path) -> None:
    capture, _ = damaged(tmp_path, "giant.pcap", with_record_length(pcap_bytes(GOOD), 1, 0x7FFFFFFF))
    assert capture["frames"] == 1
    assert "claims" in capture["damage"][0]["message"]


def test_gzip_cut_short(tmp_path: Path) -> None:
    frames = [gen.background_dns(k, False) for k in range(400)]
    zipped = compress(pcap_bytes(frames), "gzip")
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(zipped[: len(zipped) * 3 // 4])
    # Read in small chunks, the frames decompressed before the cut are analysed and the cut is damage.
    result = scan_capture(str(path), Settings(chunk_bytes=4096), keep="none")
    assert 0 < result.summary.frames < 400
    assert "gzip" in result.summary.damage[-1].message
    # At the command line (default 32 MiB chunks) the frames before the cut are analysed too.
    code, out, err = classify(path, "--format", "json")
    assert code == 0 and len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    [capture] = json.loads(out)["captures"]
    assert 0 < capture["frames"] < 400 and "gzip" in capture["damage"][-1]["message"]


def test_unknown_link_type_is_read_and_noted(tmp_path: Path) -> None:
    capture, _ = damaged(tmp_path, "lt147.pcap", pcap_bytes(GOOD, linktype=147))
    assert capture["frames"] == 3 and capture["classes"] == {"other": {"frames": 3, "bytes": sum(map(len, GOOD))}}
    assert "link type 147" in capture["damage"][0]["message"]


def test_link_type_wider_than_the_column_keeps_its_number(tmp_path: Path) -> None:
    capture, warning = damaged(tmp_path, "lt40000.pcap", pcap_bytes(GOOD, linktype=40000))
    assert capture["frames"] == 3 and capture["link_types"] == ["LINKTYPE_40000"]
    # A note on frames that were all read does not claim reading stopped.
    assert warning.endswith("every frame was read")


def test_frames_shorter_than_their_headers(tmp_path: Path) -> None:
    path = tmp_path / "short.pcap"
    frames = [b"\x00" * 10, GOOD[0][:20], GOOD[0][:30], gen.fastdp(0, 1, gen.fastdp_heartbeat_inner(1))[:60]]
    path.write_bytes(pcap_bytes(frames, wirelen=[100, 100, 100, 1440]))
    code, out, err = classify(path, "--format", "json")
    assert code == 0, err
    [capture] = json.loads(out)["captures"]
    assert capture["frames"] == 4
    # Nothing is guessed from headers that are not there: a cut VXLAN frame is not a heartbeat.
    assert "weave.fastdp.heartbeat" not in capture["classes"]


def test_tshark_dissector_gives_the_same_one_line_errors(tmp_path: Path) -> None:
    need_tool("tshark")
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")  # tshark would dissect some text formats; this is no capture
    code, out, err = classify(path, "--dissector", "tshark")
    assert code == 3 and out == "" and len(err.splitlines()) == 1 and "not a pcap or pcapng capture" in err
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(pcap_bytes(GOOD)[:-5])
    code, out, err = classify(cut, "--dissector", "tshark", "--format", "json")
    assert code == 0 and json.loads(out)["captures"][0]["frames"] == 2
    assert len(err.splitlines()) == 1 and "cut short" in err
