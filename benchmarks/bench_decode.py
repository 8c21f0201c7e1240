"""Decode-only throughput, compiled core vs numpy path vs per-packet path vs a dpkt loop, in one run.

`python benchmarks/bench_decode.py` decodes a generated chunk of mixed Weave traffic;
`python benchmarks/bench_decode.py --capture incident.pcap` decodes a capture's chunks, read into memory
first so only decoding is timed (make one with `benchmarks/make_capture.py --mix incident`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # support.*: frame builders, writers

import argparse
import time

from support.chunks import make_chunk

from weavepcap.decode import DecodeState, core, decode_chunk
from weavepcap.io.records import FrameChunk
from weavepcap.settings import Settings

ENGINES = ("core", "numpy", "packet")


def split(chunk: FrameChunk, frames: int) -> list[FrameChunk]:
    """The chunk cut into chunks of `frames` frames, as the readers would hand them over."""
    parts = []
    for first in range(0, len(chunk), frames):
        rows = slice(first, first + frames)
        base = int(chunk.offsets[first])
        end = int(
            chunk.offsets[min(first + frames, len(chunk)) - 1]
            + chunk.caplen[min(first + frames, len(chunk)) - 1]
        )
        parts.append(
            FrameChunk(
                data=chunk.data[base:end].copy(),
                offsets=chunk.offsets[rows] - base,
                caplen=chunk.caplen[rows],
                wirelen=chunk.wirelen[rows],
                ts_ns=chunk.ts_ns[rows],
                linktype=chunk.linktype[rows],
                iface=chunk.iface[rows],
                frame=chunk.frame[rows],
                file_offset=chunk.file_offset[rows],
            )
        )
    return parts


def read_capture(path: str) -> list[FrameChunk]:
    """Every chunk of a capture, as weavepcap's reader hands them to the decoder."""
    from weavepcap.io import open_capture

    with open_capture(path) as capture:
        return list(capture.chunks())


def first_frames(parts: list[FrameChunk], frames: int) -> list[FrameChunk]:
    """The leading chunks holding about `frames` frames (the per-packet path is too slow for all of them)."""
    out, total = [], 0
    for part in parts:
        if total >= frames:
            break
        out.append(part)
        total += len(part)
    return out


def time_engine(parts: list[FrameChunk], settings: Settings, engine: str, repeat: int) -> tuple[float, float, int]:
    """Best wall and CPU seconds of decoding all parts with one engine, and the frames left to the per-packet path."""
    best_wall = best_cpu = float("inf")
    slow = 0
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        state = DecodeState()
        slow = sum(decode_chunk(part, settings, state, engine=engine).slow_frames for part in parts)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, slow


def time_dpkt(parts: list[FrameChunk], repeat: int) -> float:
    """Best wall seconds of the dpkt loop a Python user would write first, over the same frames in memory."""
    import dpkt

    frames = [part.frame_bytes(i) for part in parts for i in range(len(part))]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        ports = 0
        for buf in frames:
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                l4 = ip.data
                if isinstance(l4, dpkt.udp.UDP | dpkt.tcp.TCP):
                    ports += l4.dport
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", help="decode this capture's chunks instead of a generated chunk")
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames of the generated chunk")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--chunk-frames", type=int, default=0, help="decode in chunks of this many frames (0: one chunk)"
    )
    parser.add_argument(
        "--slow-frames", type=int, default=100_000, help="frames timed on the per-packet path and dpkt (0: skip)"
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ", ".join(ENGINES))
    args = parser.parse_args()
    settings = Settings()
    if args.capture:
        parts = read_capture(args.capture)
        source = args.capture
    else:
        chunk = make_chunk(args.frames)
        parts = split(chunk, args.chunk_frames) if args.chunk_frames else [chunk]
        source = "generated mix"
    frames = sum(len(part) for part in parts)
    megabytes = sum(part.data.size for part in parts) / 1e6
    print(f"{source}: {frames:,} frames, {megabytes:.0f} MB in {len(parts)} chunk(s); best of {args.repeat}")
    engines = [e for e in args.engines.split(",") if e]
    if "core" in engines and not core.available():
        print("core: not built (pip install -e . compiles weavepcap._core)")
        engines.remove("core")
    rows = []
    for engine in engines:
        timed = first_frames(parts, args.slow_frames) if engine == "packet" else parts
        if not timed:
            continue
        n = sum(len(part) for part in timed)
        wall, cpu, slow = time_engine(timed, settings, engine, 1 if engine == "packet" else args.repeat)
        rows.append((engine, n, wall, cpu, slow))
    if args.slow_frames:
        timed = first_frames(parts, args.slow_frames)
        if timed:
            n = sum(len(part) for part in timed)
            wall = time_dpkt(timed, 1)
            rows.append(("dpkt", n, wall, wall, n))
    print(f"{'path':<8} {'frames':>10} {'wall s':>8} {'M frames/s':>11} {'CPU M frames/s':>15} {'per-packet':>11}")
    for engine, n, wall, cpu, slow in rows:
        per_packet = f"{slow / n:.2%}" if engine != "dpkt" else "-"
        print(f"{engine:<8} {n:>10,} {wall:>8.3f} {n / wall / 1e6:>11.3f} {n / cpu / 1e6:>15.3f} {per_packet:>11}")


if __name__ == "__main__":
    main()
