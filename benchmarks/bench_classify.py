"""Benchmark weavepcap classify against tshark and a dpkt loop on the same generated capture, in one run."""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

# What the tshark baseline extracts: about what a classifier needs, first occurrence of each field.
TSHARK_FIELDS = (
    "frame.number", "frame.len", "ip.src", "ip.dst", "ip.proto", "ip.flags.df", "ip.flags.mf", "ip.frag_offset",
    "udp.srcport", "udp.dstport", "tcp.srcport", "tcp.dstport", "icmp.type", "icmp.code", "icmp.mtu", "vxlan.vni",
)


@dataclass
class Measurement:
    """One tool's run over the capture: wall time, its own peak RSS, and what it reported."""

    tool: str
    command: str
    frames: int
    bytes: int
    seconds: float  # wall clock
    cpu_seconds: float  # user + system CPU of the child: steadier than wall time on a busy machine
    peak_rss_mb: float
    inner_seconds: float | None = None  # time measured inside the worker (no interpreter start-up)
    exit_code: int = 0
    note: str = ""

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    @property
    def frames_per_cpu_second(self) -> float:
        return self.frames / self.cpu_seconds if self.cpu_seconds else 0.0


def pin_to_one_core() -> None:
    """Children run on one core: the targets are stated for a single core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_child(tool: str, command: list[str], frames: int, size: int, *, one_core: bool, timeout_s: float) -> Measurement:
    """Run a child to completion; wall time from here, peak RSS from wait4 (that child alone)."""
    started = time.perf_counter()
    stdout_path = OUT / f".{tool.split()[0]}.stdout"
    with stdout_path.open("w+b") as stdout:
        process = subprocess.Popen(
            command, stdout=stdout, stderr=subprocess.PIPE, preexec_fn=pin_to_one_core if one_core else None
        )
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        stdout.seek(0)
        output = stdout.read(1 << 20).decode(errors="replace")
    stdout_path.unlink(missing_ok=True)
    measurement = Measurement(
        tool=tool,
        command=" ".join(Path(c).name if c == command[0] else c for c in command),
        frames=frames,
        bytes=size,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports kilobytes
        exit_code=process.returncode,
    )
    if process.returncode != 0:
        lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Running as user")]
        measurement.note = (lines[-1] if lines else f"exit {process.returncode}")[:160]
    elif output.startswith("{") and '"inner_seconds"' in output:
        report = json.loads(output)
        measurement.inner_seconds = report["inner_seconds"]
        measurement.frames = report.get("frames", frames)
        measurement.note = report.get("note", "")
    return measurement


# --- workers: run inside a child so each gets its own wall clock and peak RSS ---------------------------


def worker_scan(path: str) -> dict[str, object]:
    from weavepcap.scan import scan_capture

    started = time.perf_counter()
    result = scan_capture(path, keep="none", flows=False)  # what `weavepcap classify` does without --timeline
    seconds = time.perf_counter() - started
    classes = result.summary.classes
    top = sorted(classes.items(), key=lambda item: -item[1]["frames"])[:4]
    return {
        "inner_seconds": seconds,
        "frames": result.summary.frames,
        "note": ", ".join(f"{name} {value['frames']:,}" for name, value in top),
    }


def worker_dpkt(path: str) -> dict[str, object]:
    """The baseline a Python user would write first: dpkt objects per frame, ports and a few counters."""
    import dpkt

    started = time.perf_counter()
    frames = vxlan = sleeve = control = icmp = fragments = 0
    with open(path, "rb") as handle:
        for _ts, buf in dpkt.pcap.Reader(handle):
            frames += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            if ip.mf or ip.offset:
                fragments += 1
            l4 = ip.data
            if isinstance(l4, dpkt.udp.UDP):
                if l4.dport == 6784:
                    vxlan += 1
                elif l4.dport == 6783:
                    sleeve += 1
            elif isinstance(l4, dpkt.tcp.TCP):
                if 6783 in (l4.sport, l4.dport):
                    control += 1
            elif isinstance(l4, dpkt.icmp.ICMP):
                icmp += 1
    return {
        "inner_seconds": time.perf_counter() - started,
        "frames": frames,
        "note": f"udp6784 {vxlan:,}, udp6783 {sleeve:,}, tcp6783 {control:,}, icmp {icmp:,}, fragments {fragments:,}",
    }


def worker_profile(path: str) -> dict[str, object]:
    from weavepcap.scan import scan_capture

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    result = scan_capture(path, keep="none", flows=False)
    profiler.disable()
    seconds = time.perf_counter() - started
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    (OUT / "profile.txt").write_text(text.getvalue())
    return {"inner_seconds": seconds, "frames": result.summary.frames, "note": f"cProfile -> {OUT / 'profile.txt'}"}


def worker_stages(path: str) -> dict[str, object]:
    """Wall time of each pipeline stage without a profiler's per-call overhead: read, + decode, whole scan."""
    from weavepcap.decode import DecodeState, decode_chunk
    from weavepcap.io import open_capture
    from weavepcap.scan import scan_capture
    from weavepcap.settings import DEFAULT_SETTINGS

    timings: dict[str, float] = {}
    started = time.perf_counter()
    frames = sum(len(chunk) for chunk in open_capture(path, DEFAULT_SETTINGS).chunks())
    timings["read + walk records"] = time.perf_counter() - started
    started = time.perf_counter()
    state = DecodeState()
    for chunk in open_capture(path, DEFAULT_SETTINGS).chunks():
        decode_chunk(chunk, DEFAULT_SETTINGS, state)
    timings["read + decode"] = time.perf_counter() - started
    started = time.perf_counter()
    scan_capture(path, keep="none", flows=False)
    timings["scan without flow table (as classify)"] = time.perf_counter() - started
    started = time.perf_counter()
    scan_capture(path, keep="none")
    timings["scan with flow table"] = time.perf_counter() - started
    note = "; ".join(f"{name} {seconds:.2f} s ({seconds / frames * 1e9:.0f} ns/frame)" for name, seconds in timings.items())
    return {"inner_seconds": timings["scan without flow table (as classify)"], "frames": frames, "note": note}


WORKERS = {"scan": worker_scan, "dpkt": worker_dpkt, "profile": worker_profile, "stages": worker_stages}


# --- the benchmark ---------------------------------------------------------------------------------------


def ensure_capture(frames: int, path: Path | None) -> Path:
    if path is not None:
        return path
    target = OUT / f"bench-{frames}.pcap"
    if not target.exists():
        sys.path.insert(0, str(HERE))
        from make_capture import make_capture

        print(f"generating {target.name} ({frames:,} frames) ...", file=sys.stderr)
        make_capture(target, frames)
    return target


def count_frames(path: Path) -> int:
    """Records in a classic little-endian pcap, by walking the record headers (cheap, no decoding)."""
    import mmap
    import struct

    count, offset, size = 0, 24, path.stat().st_size
    caplen_at = struct.Struct("<I")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        while offset + 16 <= size:
            offset += 16 + caplen_at.unpack_from(data, offset + 8)[0]
            count += 1
    return count


def warm_cache(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.read(64 << 20):
            pass


def analyze_available() -> bool:
    try:
        import weavepcap.api  # noqa: F401
    except ImportError:
        return False
    return True


def machine() -> str:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def print_table(results: list[Measurement], reference: Measurement | None) -> None:
    """One line per tool; ratios are against `reference` (weavepcap), by wall time and by CPU time."""
    header = (
        f"{'tool':36} {'wall s':>7} {'CPU s':>7} {'frames/s':>10} {'frames/CPU-s':>12} {'MB/s':>7} "
        f"{'peak RSS MB':>11} {'x wall':>7} {'x CPU':>6}"
    )
    print(header)
    print("-" * len(header))
    for m in results:
        ok = reference is not None and m.exit_code == 0
        wall_ratio = m.seconds / reference.seconds if ok and reference.seconds else float("nan")
        cpu_ratio = m.cpu_seconds / reference.cpu_seconds if ok and reference.cpu_seconds else float("nan")
        status = "" if m.exit_code == 0 else f"  FAILED: {m.note}"
        print(
            f"{m.tool:36} {m.seconds:7.2f} {m.cpu_seconds:7.2f} {m.frames_per_second:10,.0f} "
            f"{m.frames_per_cpu_second:12,.0f} {m.mb_per_second:7.1f} {m.peak_rss_mb:11.1f} "
            f"{wall_ratio:7.1f} {cpu_ratio:6.1f}{status}"
        )
    for m in results:
        if m.exit_code == 0 and m.note:
            inner = f" (inside the process: {m.inner_seconds:.2f} s)" if m.inner_seconds else ""
            print(f"  {m.tool}{inner}: {m.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2_000_000, help="frames of the main capture (default 2,000,000)")
    parser.add_argument("--small-frames", type=int, default=500_000, help="frames of the memory-check capture")
    parser.add_argument("--capture", type=Path, help="benchmark this capture instead of generating one")
    parser.add_argument("--skip", action="append", default=[], choices=["tshark", "dpkt", "cli", "analyze", "memory"])
    parser.add_argument("--profile", action="store_true", help="also run scan_capture under cProfile")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the children to one core")
    parser.add_argument("--json", type=Path, help="write the measurements here as JSON")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per tool")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("worker_path", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.worker_path)))
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    capture = ensure_capture(args.frames, args.capture)
    size = capture.stat().st_size
    frames = count_frames(capture)
    warm_cache(capture)
    one_core = not args.all_cores
    python = sys.executable
    me = str(Path(__file__).resolve())
    print(f"capture: {capture.name}, {frames:,} frames, {size / 1e6:,.1f} MB; machine: {machine()}", file=sys.stderr)

    def child(tool: str, command: list[str], n: int = frames, nbytes: int = size) -> Measurement:
        print(f"running {tool} ...", file=sys.stderr)
        return run_child(tool, command, n, nbytes, one_core=one_core, timeout_s=args.timeout)

    results: list[Measurement] = []
    scan = child("weavepcap scan_capture (in-process)", [python, me, "--worker", "scan", str(capture)])
    results.append(scan)
    if "cli" not in args.skip:
        results.append(child("weavepcap classify (CLI)", [python, "-m", "weavepcap", "classify", str(capture), "--format", "json"]))
    if "analyze" not in args.skip and analyze_available():
        results.append(child("weavepcap analyze (CLI)", [python, "-m", "weavepcap", "analyze", str(capture), "--format", "json"]))
    tshark = shutil.which("tshark")
    if "tshark" not in args.skip and tshark:
        command = [tshark, "-r", str(capture), "-n", "-T", "fields", "-E", "occurrence=f", "-d", "udp.port==6784,vxlan"]
        for name in TSHARK_FIELDS:
            command += ["-e", name]
        results.append(child("tshark -T fields > /dev/null", command))
    if "dpkt" not in args.skip:
        results.append(child("dpkt per-packet loop", [python, me, "--worker", "dpkt", str(capture)]))

    memory: list[tuple[Measurement, Measurement]] = []  # (small capture, main capture) per tool
    if "memory" not in args.skip and args.capture is None and args.small_frames < frames:
        small = ensure_capture(args.small_frames, None)
        warm_cache(small)
        small_size = small.stat().st_size
        for big in results:
            if big.exit_code != 0 or not big.tool.startswith("weavepcap"):
                continue
            if big.tool.startswith("weavepcap scan_capture"):
                command = [python, me, "--worker", "scan", str(small)]
            else:
                command = [python, "-m", "weavepcap", big.tool.split()[1], str(small), "--format", "json"]
            memory.append((child(f"{big.tool} {args.small_frames:,}", command, args.small_frames, small_size), big))

    print()
    print(f"capture {capture.name}: {frames:,} frames, {size / 1e6:,.1f} MB, warm page cache, "
          f"{'one core' if one_core else 'all cores'}; {machine()}")
    print_table(results, scan if scan.exit_code == 0 else None)
    if memory:
        print()
        print(f"memory independence: peak RSS at {args.small_frames:,} vs {frames:,} frames")
        for small_run, big in memory:
            failed = "" if small_run.exit_code == 0 else f"  FAILED: {small_run.note}"
            print(f"  {big.tool:36} {small_run.peak_rss_mb:8.1f} MB  vs {big.peak_rss_mb:8.1f} MB{failed}")
    if scan.exit_code == 0:
        print()
        for m in results[1:]:
            if m.exit_code == 0 and m.tool.startswith(("tshark", "dpkt")):
                print(
                    f"weavepcap scan_capture is {m.seconds / scan.seconds:.1f}x (wall) / "
                    f"{m.cpu_seconds / scan.cpu_seconds:.1f}x (CPU) faster than {m.tool}"
                )
        analyze = next((m for m in results if m.tool.startswith("weavepcap analyze") and m.exit_code == 0), None)
        cli = next((m for m in results if m.tool.startswith("weavepcap classify") and m.exit_code == 0), None)
        if analyze and cli:
            print(
                f"analyze costs {analyze.seconds / cli.seconds:.2f}x (wall) / "
                f"{analyze.cpu_seconds / cli.cpu_seconds:.2f}x (CPU) classify (target <= 2)"
            )

    if args.profile:
        print(file=sys.stderr)
        stages = child("pipeline stages", [python, me, "--worker", "stages", str(capture)])
        print(f"stages (wall, one process): {stages.note or 'failed'}")
        profiled = child("scan_capture under cProfile", [python, me, "--worker", "profile", str(capture)])
        print(f"profile: {profiled.note or 'failed'}")
    if args.json:
        payload = {
            "machine": machine(), "capture": capture.name, "frames": frames, "bytes": size, "one_core": one_core,
            "results": [
                asdict(m) | {"frames_per_second": m.frames_per_second, "frames_per_cpu_second": m.frames_per_cpu_second}
                for m in results
            ],
            "memory": [{"tool": big.tool, "small": asdict(small_run), "large": asdict(big)} for small_run, big in memory],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0 if scan.exit_code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
