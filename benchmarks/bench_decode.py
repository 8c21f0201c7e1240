"""Decode-only throughput on a generated chunk of mixed Weave traffic: `python benchmarks/bench_decode.py`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # support.*: frame builders, writers

import argparse
import time

from support.chunks import make_chunk

from weavepcap.decode import DecodeState, decode_chunk
from weavepcap.io.records import FrameChunk
from weavepcap.settings import Settings


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--chunk-frames", type=int, default=0, help="decode in chunks of this many frames (0: one chunk)"
    )
    args = parser.parse_args()
    chunk = make_chunk(args.frames)
    settings = Settings()
    parts = split(chunk, args.chunk_frames) if args.chunk_frames else [chunk]
    best_wall = best_cpu = float("inf")
    slow = 0
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        state = DecodeState()
        slow = sum(decode_chunk(part, settings, state).slow_frames for part in parts)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    print(
        f"{args.frames:,} frames, {chunk.data.size / 1e6:.0f} MB in {len(parts)} chunk(s): best wall {best_wall:.3f} s "
        f"({args.frames / best_wall / 1e6:.2f} M frames/s), best CPU {best_cpu:.3f} s ({args.frames / best_cpu / 1e6:.2f} M frames/s); "
        f"per-packet path {slow:,} frames ({slow / args.frames:.2%})"
    )


if __name__ == "__main__":
    main()
