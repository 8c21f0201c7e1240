"""Property: random frames written as pcap/pcapng (any byte order, resolution, compression) read back unchanged."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.writers import WriterInterface, write_pcap, write_pcapng

from weavepcap.io import CaptureSpec, open_capture
from weavepcap.settings import Settings

frames_strategy = st.lists(st.binary(min_size=0, max_size=1600), min_size=0, max_size=40)
# 1970 .. 2100 in ns
timestamp = st.integers(min_value=0, max_value=4_102_444_800 * 1_000_000_000)
compressions = st.sampled_from([None, "gzip", "bzip2", "xz", "zstd"])


@st.composite
def capture_case(draw: st.DrawFn) -> dict[str, object]:
    frames = draw(frames_strategy)
    n = len(frames)
    ts = sorted(draw(st.lists(timestamp, min_size=n, max_size=n)))
    extra = draw(st.lists(st.integers(min_value=0, max_value=9000), min_size=n, max_size=n))
    wirelen = [len(f) + e for f, e in zip(frames, extra, strict=True)]  # snaplen-cut frames are fine
    return {
        "frames": frames,
        "ts": ts,
        "wirelen": wirelen,
        "format": draw(st.sampled_from(["pcap", "pcapng"])),
        "nanosecond": draw(st.booleans()),
        "big_endian": draw(st.booleans()),
        "compression": draw(compressions),
        "chunk_bytes": draw(st.sampled_from([4096, 6000, 1 << 20])),
        "blocks": draw(st.lists(st.sampled_from(["epb", "pb", "spb"]), min_size=n, max_size=n)),
        "two_interfaces": draw(st.booleans()),
        "owners": draw(st.lists(st.integers(min_value=0, max_value=1), min_size=n, max_size=n)),
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=capture_case())
def test_round_trip(case: dict) -> None:
    frames: list[bytes] = case["frames"]
    unit = 1 if case["nanosecond"] else 1000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "capture"
        if case["format"] == "pcap":
            write_pcap(path, frames, 1, case["nanosecond"], case["big_endian"], ts_ns=case["ts"],
                       wirelen=case["wirelen"], compression=case["compression"])
            owners = [0] * len(frames)
            expected_ts = [t // unit * unit for t in case["ts"]]
            expected_linktype = [1] * len(frames)
        else:
            interfaces = [WriterInterface(1, 9 if case["nanosecond"] else 6)]
            if case["two_interfaces"]:
                interfaces.append(WriterInterface(113, 6 if case["nanosecond"] else 9))
            blocks = case["blocks"]
            owners = [0 if b == "spb" or not case["two_interfaces"] else o
                      for b, o in zip(blocks, case["owners"], strict=True)]
            # a Simple Packet Block cannot say it was cut short by anything but interface 0's snaplen
            case["wirelen"] = [len(f) if b == "spb" else w for f, b, w in zip(frames, blocks, case["wirelen"], strict=True)]
            write_pcapng(path, frames, big_endian=case["big_endian"], ts_ns=case["ts"], wirelen=case["wirelen"],
                         interfaces=interfaces, iface=owners, block=blocks, compression=case["compression"])
            expected_ts = []
            previous = 0
            for t, block, owner in zip(case["ts"], blocks, owners, strict=True):
                if block != "spb":
                    step = int(interfaces[owner].units_per_second())
                    previous = t // (1_000_000_000 // step) * (1_000_000_000 // step)
                expected_ts.append(previous)
            expected_linktype = [interfaces[o].linktype for o in owners]
        capture = open_capture(CaptureSpec(str(path)), Settings(chunk_bytes=case["chunk_bytes"]))
        chunks = list(capture.chunks())
    got = [chunk.frame_bytes(i) for chunk in chunks for i in range(len(chunk))]
    assert got == frames
    assert [int(v) for c in chunks for v in c.ts_ns] == expected_ts
    assert [int(v) for c in chunks for v in c.wirelen] == case["wirelen"]
    assert [int(v) for c in chunks for v in c.caplen] == [len(f) for f in frames]
    assert [int(v) for c in chunks for v in c.frame] == list(range(1, len(frames) + 1))
    assert [int(v) for c in chunks for v in c.iface] == owners
    assert [int(v) for c in chunks for v in c.linktype] == expected_linktype
    assert [d for d in capture.info.damage if "simple packet" not in d.message] == []
    assert capture.info.compression == (case["compression"] or "")
