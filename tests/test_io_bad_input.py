"""Bad input to the readers: one-line CaptureError when nothing is readable, else frames kept + damage."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from support.writers import (
    BLOCK_EPB,
    WriterInterface,
    compress,
    pcap_bytes,
    pcapng_block,
    pcapng_bytes,
)

from weavepcap.errors import CaptureError, ExitCode
from weavepcap.io import Capture, CaptureSpec, open_capture
from weavepcap.settings import Settings

FRAMES = [bytes([i]) * (60 + i) for i in range(10)]
SMALL = Settings(chunk_bytes=4096)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read(path: str, settings: Settings = SMALL) -> tuple[Capture, list[int]]:
    capture = open_capture(CaptureSpec(path), settings)
    numbers = [int(n) for chunk in capture.chunks() for n in chunk.frame]
    return capture, numbers


def unreadable(path: str) -> CaptureError:
    with pytest.raises(CaptureError) as caught:
        read(path)
    error = caught.value
    text = str(error)
    assert "\n" not in text and path in text  # one line, naming the file
    assert error.exit_code == ExitCode.BAD_INPUT
    return error


def offset_of_record(index: int) -> int:
    return 24 + sum(16 + len(f) for f in FRAMES[:index])


# --- nothing readable -----------------------------------------------------------------------------

def test_not_a_capture(tmp_path: Path) -> None:
    error = unreadable(write(tmp_path, "notes.pcap", b"this is a text file, not a capture\n" * 10))
    assert "not a pcap or pcapng" in error.message and error.offset == 0


def test_empty_file(tmp_path: Path) -> None:
    assert "empty" in unreadable(write(tmp_path, "empty.pcap", b"")).message


def test_truncated_global_header(tmp_path: Path) -> None:
    error = unreadable(write(tmp_path, "short.pcap", pcap_bytes([])[:10]))
    assert "truncated pcap global header" in error.message


def test_truncated_pcapng_section_header(tmp_path: Path) -> None:
    unreadable(write(tmp_path, "short.pcapng", pcapng_bytes([])[:10]))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "cannot open" in unreadable(str(tmp_path / "nope.pcap")).message
    assert "directory" in unreadable(str(tmp_path)).message


def test_huge_first_record_is_unreadable(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(FRAMES))
    struct.pack_into("<I", data, 24 + 8, 3_000_000_000)
    error = unreadable(write(tmp_path, "huge.pcap", bytes(data)))
    assert error.offset == 24 and "3000000000" in error.message


def test_header_only_capture_is_empty_not_an_error(tmp_path: Path) -> None:
    capture, numbers = read(write(tmp_path, "none.pcap", pcap_bytes([])))
    assert numbers == [] and capture.info.damage == []


# --- some frames, then damage --------------------------------------------------------------------

def test_last_record_cut_short_is_not_yielded(tmp_path: Path) -> None:
    data = pcap_bytes(FRAMES)
    capture, numbers = read(write(tmp_path, "cut.pcap", data[:-5]))
    assert numbers == list(range(1, 10))  # like tshark: the partial 10th record is not a frame
    [damage] = capture.info.damage
    assert damage.frame == 10 and damage.offset == offset_of_record(9)
    assert "cut short" in damage.message


def test_record_claiming_gigabytes_mid_file(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(FRAMES))
    struct.pack_into("<I", data, offset_of_record(4) + 8, 0xFFFFFFF0)
    capture, numbers = read(write(tmp_path, "huge.pcap", bytes(data)), Settings())
    assert numbers == [1, 2, 3, 4]
    [damage] = capture.info.damage
    assert damage.frame == 5 and damage.offset == offset_of_record(4)


def test_record_claiming_more_than_the_limit_but_inside_the_buffer(tmp_path: Path) -> None:
    frames = FRAMES + [b"\0" * 2_000_000]
    data = bytearray(pcap_bytes(frames))
    capture, numbers = read(write(tmp_path, "big.pcap", bytes(data)), Settings())
    assert numbers == list(range(1, 11))
    assert capture.info.damage[0].frame == 11


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize(
    "length, why",
    [(4 * 25 + 2, "not a multiple of 4"), (8, "less than 12"), (0, "zero")],
)
def test_pcapng_packet_block_impossible_length(tmp_path: Path, big_endian: bool, length: int, why: str) -> None:
    data = bytearray(pcapng_bytes(FRAMES, big_endian=big_endian))
    e = ">" if big_endian else "<"
    position = 28 + 20  # SHB + IDB, then the EPBs
    for frame in FRAMES[:3]:
        position += 32 + len(frame) + (-len(frame) % 4)
    struct.pack_into(e + "I", data, position + 4, length)
    capture, numbers = read(write(tmp_path, "bad.pcapng", bytes(data)))
    assert numbers == [1, 2, 3], why
    [damage] = capture.info.damage
    assert damage.frame == 4 and damage.offset == position and "impossible length" in damage.message


def test_pcapng_trailer_length_mismatch(tmp_path: Path) -> None:
    data = bytearray(pcapng_bytes(FRAMES))
    position = 28 + 20
    for frame in FRAMES[:5]:
        position += 32 + len(frame) + (-len(frame) % 4)
    length = struct.unpack_from("<I", data, position + 4)[0]
    struct.pack_into("<I", data, position + length - 4, length + 4)
    capture, numbers = read(write(tmp_path, "trailer.pcapng", bytes(data)))
    assert numbers == [1, 2, 3, 4, 5]
    assert "trailing length" in capture.info.damage[0].message


def test_pcapng_interface_block_with_bad_trailer_before_any_packet(tmp_path: Path) -> None:
    data = bytearray(pcapng_bytes(FRAMES))
    struct.pack_into("<I", data, 28 + 16, 99)  # the IDB's trailing length
    error = unreadable(write(tmp_path, "idb.pcapng", bytes(data)))
    assert error.offset == 28


def test_pcapng_packet_for_undefined_interface(tmp_path: Path) -> None:
    data = pcapng_bytes(FRAMES[:2])
    stray = pcapng_block(BLOCK_EPB, struct.pack("<IIIII", 7, 0, 0, 4, 4) + b"abcd")
    capture, numbers = read(write(tmp_path, "iface.pcapng", data + stray))
    assert numbers == [1, 2]
    assert "interface" in capture.info.damage[0].message and capture.info.damage[0].frame == 3


def test_pcapng_caplen_beyond_block(tmp_path: Path) -> None:
    data = pcapng_bytes(FRAMES[:2])
    stray = pcapng_block(BLOCK_EPB, struct.pack("<IIIII", 0, 0, 0, 400, 400) + b"abcd")
    capture, numbers = read(write(tmp_path, "caplen.pcapng", data + stray))
    assert numbers == [1, 2]
    assert "captured bytes" in capture.info.damage[0].message


def test_pcapng_cut_short(tmp_path: Path) -> None:
    data = pcapng_bytes(FRAMES)
    capture, numbers = read(write(tmp_path, "cut.pcapng", data[:-7]))
    assert numbers == list(range(1, 10))
    assert capture.info.damage[0].frame == 10 and "cut short" in capture.info.damage[0].message


def test_pcapng_bad_byte_order_magic(tmp_path: Path) -> None:
    data = bytearray(pcapng_bytes(FRAMES))
    data[8:12] = b"\x00\x11\x22\x33"
    assert "byte-order" in unreadable(write(tmp_path, "bom.pcapng", bytes(data))).message


def test_corrupt_gzip_inside(tmp_path: Path) -> None:
    frames = [bytes(range(256)) * 4 + bytes([i % 256]) for i in range(400)]  # ~400 KB
    packed = bytearray(compress(pcap_bytes(frames), "gzip"))
    middle = len(packed) // 2
    packed[middle : middle + 64] = b"\xff" * 64
    capture, numbers = read(write(tmp_path, "bad.pcap.gz", bytes(packed)), Settings(chunk_bytes=8192))
    assert 0 < len(numbers) < 400 and numbers == list(range(1, len(numbers) + 1))
    [damage] = capture.info.damage
    # Deflate may decode some garbage before zlib notices; either the walker or zlib stops the read.
    assert "decompressed gzip" in damage.message
    assert damage.frame == len(numbers) + 1


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz", "zstd"])
def test_truncated_compressed_stream(tmp_path: Path, compression: str) -> None:
    # incompressible and > 900 KB, so even bzip2 (900 KB blocks) has whole blocks before the cut
    frames = [random.Random(i).randbytes(1000) for i in range(1200)]
    packed = compress(pcap_bytes(frames), compression)
    capture, numbers = read(write(tmp_path, "cut.bin", packed[: len(packed) * 3 // 4]), Settings(chunk_bytes=8192))
    assert 0 < len(numbers) < 1200
    assert len(capture.info.damage) == 1
    assert "decompressed" in capture.info.damage[0].message


def test_garbage_after_gzip_magic_is_unreadable(tmp_path: Path) -> None:
    error = unreadable(write(tmp_path, "junk.gz", b"\x1f\x8b" + b"\x00junk" * 50))
    assert "gzip" in error.message


def test_unknown_link_type_is_read_and_noted_once(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.pcap", pcap_bytes(FRAMES, linktype=147))
    capture, numbers = read(path)
    assert numbers == list(range(1, 11))
    notes = [d for d in capture.info.damage if "link type 147" in d.message]
    assert len(notes) == 1 and notes[0].frame == 1


def test_unknown_link_type_on_one_pcapng_interface(tmp_path: Path) -> None:
    interfaces = [WriterInterface(1), WriterInterface(147)]
    data = pcapng_bytes(FRAMES, interfaces=interfaces, iface=[0, 0, 0, 1, 1, 0, 1, 0, 0, 0])
    capture, numbers = read(write(tmp_path, "odd.pcapng", data))
    assert numbers == list(range(1, 11))
    assert [(d.frame, "147" in d.message) for d in capture.info.damage] == [(4, True)]


def test_many_tiny_truncations_never_hang(tmp_path: Path) -> None:
    """Every prefix of a small pcapng ends in frames + damage or a CaptureError, never a hang or a crash."""
    data = pcapng_bytes(FRAMES[:3], interfaces=[WriterInterface(1, 9, "eth0")], block=["epb", "spb", "pb"])
    boundaries = {0}
    position = 0
    while position < len(data):
        position += struct.unpack_from("<I", data, position + 4)[0]
        boundaries.add(position)
    for cut in range(len(data) + 1):
        path = write(tmp_path, "prefix.pcapng", data[:cut])
        try:
            capture, numbers = read(path)
        except CaptureError:
            continue
        assert numbers == list(range(1, len(numbers) + 1))
        if cut not in boundaries:  # a cut between blocks looks like a complete, shorter file
            assert capture.info.damage


def test_random_corruption_never_crashes(tmp_path: Path) -> None:
    """Seeded mutation fuzzing: every damaged file gives frames (+ damage) or one CaptureError."""
    frames = [bytes([i]) * (i * 13 % 200) for i in range(30)]
    interfaces = [WriterInterface(1, 9, "eth0", tsoffset_s=5), WriterInterface(113, 0x80 | 20)]
    bases = [
        pcap_bytes(frames),
        pcap_bytes(frames, nanosecond=True, big_endian=True),
        pcapng_bytes(frames, interfaces=interfaces, iface=[i % 2 for i in range(30)],
                     block=["epb", "pb", "spb"] * 10, big_endian=True),
        pcapng_bytes(frames) + pcapng_bytes(frames, big_endian=True),
    ]
    rng = random.Random(2026)
    path = tmp_path / "fuzz.bin"
    for _ in range(300):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 6)):
            where = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.6:
                data[where] = rng.randrange(256)
            elif roll < 0.8:
                del data[where : where + rng.randint(1, 20)]
            else:
                data[where:where] = rng.randbytes(rng.randint(1, 8))
        path.write_bytes(bytes(data))
        try:
            _, numbers = read(str(path))
        except CaptureError as error:
            assert "\n" not in str(error)
            continue
        assert numbers == list(range(1, len(numbers) + 1))
