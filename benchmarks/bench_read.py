"""Reader benchmark: time open_capture's record walk against dpkt's Reader on a generated capture."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # support.*: frame builders, writers

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from support.writers import pcap_bytes, pcapng_bytes

from weavepcap.io.readers import open_capture


def _generate(path: Path, fmt: str, frames: int, seed: int = 1) -> None:
    """Write `frames` frames with a realistic size mix (ACKs, heartbeats, full-size), in slices."""
    sizes = np.random.default_rng(seed).choice([60, 74, 110, 590, 1474, 1514], size=frames)
    blob = bytes(range(256)) * 6
    with path.open("wb") as handle:
        for start in range(0, frames, 200_000):
            part = [blob[:s] for s in sizes[start : start + 200_000]]
            if fmt == "pcap":
                data = pcap_bytes(part)
                handle.write(data if start == 0 else data[24:])
            else:
                data = pcapng_bytes(part)
                handle.write(data if start == 0 else data[48:])  # one SHB + IDB only


def _best_of(runs: int, path: Path) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        count = sum(len(chunk) for chunk in open_capture(str(path)).chunks())
        best = min(best, time.perf_counter() - started)
    return best, count


def _dpkt_seconds(path: Path, fmt: str) -> float:
    import dpkt

    started = time.perf_counter()
    with path.open("rb") as handle:
        reader = dpkt.pcap.Reader(handle) if fmt == "pcap" else dpkt.pcapng.Reader(handle)
        for _ in reader:
            pass
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-dpkt", action="store_true", help="skip the dpkt comparison")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("pcap", "pcapng"):
            path = Path(folder) / f"bench.{fmt}"
            _generate(path, fmt, args.frames)
            seconds, count = _best_of(args.runs, path)
            size = path.stat().st_size
            line = (f"{fmt:7s} {count} frames, {size / 1e6:.0f} MB: {seconds:.2f} s, "
                    f"{count / seconds / 1e6:.2f} M frames/s, {size / seconds / 1e6:.0f} MB/s")
            if not args.no_dpkt:
                reference = _dpkt_seconds(path, fmt)
                line += f"; dpkt Reader {count / reference / 1e6:.2f} M frames/s ({reference / seconds:.1f}x slower)"
            print(line)
            path.unlink()


if __name__ == "__main__":
    main()
