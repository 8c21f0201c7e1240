"""Readers on real captures (MANIFEST frame counts, dpkt agreement) and on hand-built pcap/pcapng files."""

from __future__ import annotations

import csv
import io
import struct
import sys
import tracemalloc
from pathlib import Path

import dpkt
import numpy as np
import pytest
from conftest import REAL_CAPTURES, real_captures
from support.writers import (
    DEFAULT_START_NS,
    WriterInterface,
    compress,
    pcap_bytes,
    pcapng_block,
    pcapng_bytes,
    write_pcap,
    write_pcapng,
)

from weavepcap.io import Capture, CaptureSpec, FrameChunk, open_capture
from weavepcap.settings import Settings

SMALL = Settings(chunk_bytes=4096)


def read_all(capture: Capture) -> list[FrameChunk]:
    return list(capture.chunks())


def flat(chunks: list[FrameChunk], column: str) -> list[int]:
    return [int(v) for chunk in chunks for v in getattr(chunk, column)]


def frames_of(chunks: list[FrameChunk]) -> list[bytes]:
    return [chunk.frame_bytes(i) for chunk in chunks for i in range(len(chunk))]


def manifest() -> dict[str, dict[str, str]]:
    with (REAL_CAPTURES / "MANIFEST.tsv").open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def dpkt_frames(path: Path) -> list[tuple[float, bytes]]:
    """dpkt's view of a capture; dpkt yields a cut-short last record, tshark (and we) do not."""
    out: list[tuple[float, bytes]] = []
    with path.open("rb") as handle:
        reader = dpkt.pcapng.Reader(handle) if path.suffix == ".pcapng" else dpkt.pcap.Reader(handle)
        try:
            for ts, buf in reader:
                out.append((float(ts), bytes(buf)))
        except (dpkt.NeedData, dpkt.UnpackError):
            pass
    return out


# --- real captures -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", real_captures(), ids=lambda p: p.name)
@pytest.mark.parametrize("chunk_bytes", [4096, 32 * 1024 * 1024])
def test_real_capture_frame_count_matches_manifest(path: Path, chunk_bytes: int) -> None:
    expected = int(manifest()[path.name]["frames"])
    chunks = read_all(open_capture(CaptureSpec(str(path)), Settings(chunk_bytes=chunk_bytes)))
    assert flat(chunks, "frame") == list(range(1, expected + 1))


@pytest.mark.parametrize("path", real_captures(), ids=lambda p: p.name)
def test_real_capture_agrees_with_dpkt(path: Path) -> None:
    capture = open_capture(CaptureSpec(str(path)), SMALL)
    chunks = read_all(capture)
    reference = dpkt_frames(path)
    ours = frames_of(chunks)
    assert ours == [buf for _, buf in reference[: len(ours)]]
    if path.suffix == ".pcap":
        # (dpkt's pcapng reader applies the first interface's if_tsresol to every interface, so pcapng
        # times are checked against tshark in the multi-interface test instead.)
        ts = flat(chunks, "ts_ns")
        assert all(abs(t / 1e9 - ref_ts) < 2e-6 for t, (ref_ts, _) in zip(ts, reference, strict=False))
    # wire length is never shorter than what was captured
    assert all(w >= c for w, c in zip(flat(chunks, "wirelen"), flat(chunks, "caplen"), strict=True))


def test_real_captures_present(real_captures_dir: Path) -> None:
    assert len(real_captures()) >= 10


def test_truncated_dns_yields_one_frame_and_damage(real_captures_dir: Path) -> None:
    capture = open_capture(CaptureSpec(str(real_captures_dir / "dpkt__truncated_dns_2.pcap")))
    chunks = read_all(capture)
    assert flat(chunks, "frame") == [1]
    assert flat(chunks, "caplen") == [200] and flat(chunks, "wirelen") == [282]  # snaplen cut: not damage
    assert len(capture.info.damage) == 1
    damage = capture.info.damage[0]
    assert damage.frame == 2 and damage.offset == 24 + 16 + 200
    assert "cut short" in damage.message


def test_pcapng_multi_interface_link_types_and_resolutions(real_captures_dir: Path) -> None:
    capture = open_capture(CaptureSpec(str(real_captures_dir / "zeek__pcapng-multi-interface.pcapng")))
    chunks = read_all(capture)
    info = capture.info
    assert info.format == "pcapng" and info.byte_order == "little"
    assert [i.tsresol_ns for i in info.interfaces] == [1.0, 1000.0]
    assert info.ts_precision == "mixed"
    assert info.shb_os.startswith("Linux") and info.shb_userappl.startswith("Mergecap")
    assert flat(chunks, "iface") == [0, 0, 1, 1, 1, 1]
    assert flat(chunks, "linktype") == [1] * 6
    ts = flat(chunks, "ts_ns")
    # tshark's frame.time_epoch for frames 1 (ns interface) and 3 (us interface)
    assert ts[0] == 1767663089500330493
    assert ts[2] == 1767663437111897000
    assert flat(chunks, "caplen") == [96, 214, 70, 166, 70, 182]


def test_nanosecond_pcap(real_captures_dir: Path) -> None:
    capture = open_capture(CaptureSpec(str(real_captures_dir / "tcpdump__tcp-handshake-nano.pcap")))
    chunks = read_all(capture)
    assert capture.info.ts_precision == "ns"
    assert flat(chunks, "linktype") == [113] * 3
    assert any(t % 1000 for t in flat(chunks, "ts_ns"))  # real nanosecond digits survive


# --- hand-built captures -----------------------------------------------------------------------------

FRAMES = [bytes([i]) * (20 + 37 * i) for i in range(40)]
TS = [DEFAULT_START_NS + i * 1_234_567 for i in range(40)]


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_classic_pcap_byte_orders_and_precision(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    path = write_pcap(tmp_path / "x.pcap", FRAMES, 101, nanosecond, big_endian, ts_ns=TS, snaplen=5000)
    capture = open_capture(CaptureSpec(str(path)), SMALL)
    chunks = read_all(capture)
    assert len(chunks) > 1  # 4 KiB chunks: records straddle buffer boundaries
    assert frames_of(chunks) == FRAMES
    unit = 1 if nanosecond else 1000
    assert flat(chunks, "ts_ns") == [t // unit * unit for t in TS]
    assert flat(chunks, "linktype") == [101] * len(FRAMES)
    info = capture.info
    assert (info.byte_order, info.ts_precision, info.format) == (
        "big" if big_endian else "little", "ns" if nanosecond else "us", "pcap")
    assert info.interfaces[0].snaplen == 5000
    assert flat(chunks, "file_offset")[:2] == [24, 24 + 16 + len(FRAMES[0])]


def test_linktype_fcs_bits_are_masked(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(FRAMES[:2]))
    struct.pack_into("<I", data, 20, 1 | 0x1 << 26 | 0x4 << 28)  # FCS present, 4 bytes
    (tmp_path / "fcs.pcap").write_bytes(bytes(data))
    capture = open_capture(CaptureSpec(str(tmp_path / "fcs.pcap")))
    assert flat(read_all(capture), "linktype") == [1, 1]


def test_pcapng_blocks_interfaces_and_unknown_blocks(tmp_path: Path) -> None:
    interfaces = [
        WriterInterface(1, 9, "eth0"),
        WriterInterface(113, 6, "any", tsoffset_s=100),
        WriterInterface(276, 0x80 | 20, "lo"),
    ]
    kinds = ["epb", "pb", "epb", "spb", "epb", "epb"]
    owners = [0, 1, 2, 0, 1, 0]
    ts = [DEFAULT_START_NS + 1_000_000 * i + 7 for i in range(6)]
    data = pcapng_bytes(FRAMES[:6], interfaces=interfaces, iface=owners, block=kinds, ts_ns=ts,
                        shb_hardware="x86_64", shb_os="Linux", shb_userappl="tcpdump")
    # an unknown block, a name-resolution block and an interface-statistics block between packets
    extra = pcapng_block(0x00000BAD, b"\x01\x02\x03") + pcapng_block(4, b"\0" * 4) + pcapng_block(5, b"\0" * 12)
    cut = data.index(FRAMES[2]) - 28
    (tmp_path / "x.pcapng").write_bytes(data[:cut] + extra + data[cut:])
    capture = open_capture(CaptureSpec(str(tmp_path / "x.pcapng")))
    chunks = read_all(capture)
    assert frames_of(chunks) == FRAMES[:6]
    assert flat(chunks, "iface") == owners
    assert flat(chunks, "linktype") == [1, 113, 276, 1, 113, 1]
    got = flat(chunks, "ts_ns")
    assert got[0] == ts[0]  # ns resolution: exact
    assert got[1] == ts[1] // 1000 * 1000  # us resolution with if_tsoffset applied back
    assert abs(got[2] - ts[2]) < 1000 and got[2] <= ts[2]  # 2^-20 s units
    assert got[3] == got[2]  # a Simple Packet Block takes the previous packet's time
    assert any("simple packet" in d.message for d in capture.info.damage)
    info = capture.info
    assert [i.name for i in info.interfaces] == ["eth0", "any", "lo"]
    assert (info.shb_hardware, info.shb_os, info.shb_userappl) == ("x86_64", "Linux", "tcpdump")


def test_pcapng_sections_in_both_byte_orders(tmp_path: Path) -> None:
    first = pcapng_bytes(FRAMES[:3], 1, big_endian=False, ts_ns=TS[:3])
    second = pcapng_bytes(FRAMES[3:7], 101, nanosecond=True, big_endian=True, ts_ns=TS[3:7])
    (tmp_path / "two.pcapng").write_bytes(first + second)
    capture = open_capture(CaptureSpec(str(tmp_path / "two.pcapng")), SMALL)
    chunks = read_all(capture)
    assert frames_of(chunks) == FRAMES[:7]
    assert flat(chunks, "frame") == list(range(1, 8))
    assert flat(chunks, "linktype") == [1] * 3 + [101] * 4
    assert flat(chunks, "iface") == [0] * 3 + [1] * 4  # each section resets interfaces; indexes stay global
    assert flat(chunks, "ts_ns")[3:] == TS[3:7]
    assert len(capture.info.interfaces) == 2


def test_host_from_pcapng_comment_only_when_spec_has_none(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "h.pcapng", FRAMES[:2], shb_comment="host=node-a")
    capture = open_capture(CaptureSpec(str(path)))
    read_all(capture)
    assert capture.info.host == "node-a"
    named = open_capture(CaptureSpec(str(path), host="given"))
    read_all(named)
    assert named.info.host == "given"
    plain = open_capture(str(write_pcapng(tmp_path / "p.pcapng", FRAMES[:2])))
    read_all(plain)
    assert plain.info.host is None


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz", "zstd"])
def test_compression_by_content_not_name(tmp_path: Path, compression: str) -> None:
    path = write_pcapng(tmp_path / "misleading.pcap", FRAMES, compression=compression, big_endian=True)
    capture = open_capture(CaptureSpec(str(path)), SMALL)
    assert capture.info.compression == compression
    assert frames_of(read_all(capture)) == FRAMES


def test_zstd_multiple_frames_are_read_across(tmp_path: Path) -> None:
    data = pcap_bytes(FRAMES)
    (tmp_path / "x.zst").write_bytes(compress(data[:1000], "zstd") + compress(data[1000:], "zstd"))
    assert frames_of(read_all(open_capture(str(tmp_path / "x.zst"), SMALL))) == FRAMES


def test_gzip_multiple_members_are_read_across(tmp_path: Path) -> None:
    data = pcap_bytes(FRAMES)
    (tmp_path / "x.gz").write_bytes(compress(data[:999], "gzip") + compress(data[999:], "gzip"))
    assert frames_of(read_all(open_capture(str(tmp_path / "x.gz"), SMALL))) == FRAMES


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_stdin(monkeypatch: pytest.MonkeyPatch, compression: str | None) -> None:
    data = compress(pcapng_bytes(FRAMES, 1), compression)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    capture = open_capture(CaptureSpec("-"), SMALL)
    assert capture.info.name == "<stdin>"
    assert frames_of(read_all(capture)) == FRAMES


def test_chunks_can_be_read_twice_from_a_file(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "x.pcapng", FRAMES)
    capture = open_capture(CaptureSpec(str(path)))
    assert frames_of(read_all(capture)) == frames_of(read_all(capture)) == FRAMES
    assert len(capture.info.interfaces) == 1


def test_chunk_frame_budget_splits_large_buffers(tmp_path: Path) -> None:
    frames = [b"\x01" * 10] * 5000
    path = write_pcap(tmp_path / "many.pcap", frames)
    chunks = read_all(open_capture(CaptureSpec(str(path)), Settings(chunk_bytes=4096 * 16)))
    assert max(len(c) for c in chunks) <= Capture(CaptureSpec(str(path)), Settings(chunk_bytes=4096 * 16)).max_frames
    assert flat(chunks, "frame") == list(range(1, 5001))


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_memory_stays_bounded_by_chunk_size(tmp_path: Path, fmt: str) -> None:
    """~50 MB capture, 1 MiB chunks: peak traced memory stays below 3 chunks (bounds, not times)."""
    rng = np.random.default_rng(7)
    blob = bytes(range(256)) * 6
    path = tmp_path / f"big.{fmt}"
    with path.open("wb") as handle:
        for part in range(10):
            frames = [blob[:size] for size in rng.integers(60, 1515, size=7000)]
            if fmt == "pcap":
                data = pcap_bytes(frames)
                handle.write(data if part == 0 else data[24:])
            else:
                handle.write(pcapng_bytes(frames) if part == 0 else pcapng_bytes(frames)[28 + 20:])
    assert path.stat().st_size > 45_000_000
    chunk_bytes = 1 << 20
    tracemalloc.start()
    try:
        frames_seen = 0
        for chunk in open_capture(CaptureSpec(str(path)), Settings(chunk_bytes=chunk_bytes)).chunks():
            frames_seen += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames_seen == 70000
    assert peak < 3 * chunk_bytes


def test_pcapng_interfaces_and_host_known_before_reading(tmp_path: Path) -> None:
    interfaces = [WriterInterface(1, 9, "eth0", comment="host=node-b"), WriterInterface(276, 6, "any")]
    path = write_pcapng(tmp_path / "x.pcapng", FRAMES[:4], interfaces=interfaces, iface=[0, 1, 0, 1])
    capture = open_capture(CaptureSpec(str(path)))
    assert [i.linktype for i in capture.info.interfaces] == [1, 276]
    assert capture.info.ts_precision == "mixed" and capture.info.host == "node-b"
    read_all(capture)
    assert [i.name for i in capture.info.interfaces] == ["eth0", "any"]


def test_frame_larger_than_the_chunk_size(tmp_path: Path) -> None:
    frames = [b"a" * 100, bytes(range(256)) * 1000, b"b" * 7]  # a 256 KB frame, 4 KiB chunks
    for fmt in ("pcap", "pcapng"):
        path = (write_pcap if fmt == "pcap" else write_pcapng)(tmp_path / f"x.{fmt}", frames)
        capture = open_capture(CaptureSpec(str(path)), SMALL)
        assert frames_of(read_all(capture)) == frames
        assert capture.info.damage == []


def test_stdin_through_a_real_pipe(tmp_path: Path) -> None:
    """Short reads from a pipe: the compressed capture arrives in pieces and is still read whole."""
    import subprocess

    data = compress(pcapng_bytes([bytes([i % 256]) * 900 for i in range(300)]), "zstd")
    program = ("from weavepcap.io import open_capture; from weavepcap.settings import Settings; "
               "c = open_capture('-', Settings(chunk_bytes=4096)); "
               "print(sum(len(k) for k in c.chunks()), c.info.compression, len(c.info.damage))")
    done = subprocess.run([sys.executable, "-c", program], input=data, capture_output=True, timeout=60, check=True)
    assert done.stdout.split() == [b"300", b"zstd", b"0"]
