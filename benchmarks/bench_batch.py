"""Benchmark weavepcap batch: groups/s and frames/s with 1 and 2 local workers and on a Dask LocalCluster, peak RSS per worker."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT / "samples"
OUT = HERE / "out"
GROUP_BY = "{incident}/{host}/*"
SAMPLE_EVERY_S = 0.05
CLUSTER_TIMEOUT_S = 60


@dataclass
class Measurement:
    """One batch run: wall time, what it processed, and the peak RSS of each worker process."""

    mode: str
    groups: int
    frames: int
    failed: int
    seconds: float
    worker_cpu_s: float  # user + system CPU of the worker processes: less sensitive to a busy machine than wall time
    worker_peak_rss_mb: list[float]
    load_before: float  # 1-minute load average when the run started
    errors: list[str]  # first few one-line errors, if any group failed

    @property
    def groups_per_second(self) -> float:
        return self.groups / self.seconds if self.seconds else 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class RssSampler:
    """Samples the RSS of every descendant process (pool workers, Dask nannies and workers) in a thread."""

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(SAMPLE_EVERY_S):
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                    times = child.cpu_times()
                except psutil.Error:
                    continue
                self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), rss)
                self.cpu[child.pid] = times.user + times.system

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def build_inputs(target: Path, copies: int) -> int:
    """`copies` copies of every sample scenario, laid out as incidents/<scenario>-<n>/<host>/<capture>."""
    scenarios = 0
    for expected in sorted(SAMPLES.glob("*/expected.json")):
        document = json.loads(expected.read_text())
        if not document.get("analyze_args"):
            continue
        scenarios += 1
        for n in range(copies):
            for argument in document["analyze_args"]:
                host, _, capture = argument.rpartition("=")
                dest = target / f"{expected.parent.name}-{n:03d}" / (host or "unknown") / capture
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(expected.parent / capture, dest)
    return scenarios


def worker_pids(out: Path) -> set[int]:
    """The processes that analysed groups, from each group's resume record."""
    pids = set()
    for record in out.rglob(".batch.json"):
        pid = json.loads(record.read_text()).get("row", {}).get("worker_pid")
        if pid:
            pids.add(int(pid))
    return pids


def measure(mode: str, inputs: Path, out: Path, *, workers: int | None = None, scheduler: str | None = None) -> Measurement:
    from weavepcap.batch import run_batch

    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    with RssSampler() as sampler:
        started = time.perf_counter()
        result = run_batch([str(inputs)], out, group_by=GROUP_BY, workers=workers, scheduler=scheduler, force=True)
        seconds = time.perf_counter() - started
    pids = worker_pids(out)
    peaks = sorted((round(sampler.peaks[p] / 1e6, 1) for p in pids if p in sampler.peaks), reverse=True)
    frames = int(result.summary["frames"].fillna(0).sum())
    cpu = sum(sampler.cpu.get(p, 0.0) for p in pids)
    errors = [f"{g}: {e}" for g, e in zip(result.summary["group"], result.summary["error"], strict=True)
              if isinstance(e, str)][:5]
    return Measurement(mode, len(result.summary), frames, result.failed, round(seconds, 2), round(cpu, 2), peaks,
                       round(load, 1), errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=16, help="copies of each sample scenario (default 16)")
    parser.add_argument("--modes", default="1,2,dask", help="comma-separated: 1 and 2 local workers, dask")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        inputs = Path(tmp) / "incidents"
        scenarios = build_inputs(inputs, args.copies)
        if not scenarios:
            print("no samples/*/expected.json with analyze_args: nothing to measure", file=sys.stderr)
            return 2
        modes = set(args.modes.split(","))
        runs = [measure(f"local, {n} worker{'s' if n > 1 else ''}", inputs, Path(tmp) / f"out{n}", workers=n)
                for n in (1, 2) if str(n) in modes]
        if "dask" in modes:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   host="127.0.0.1", timeout=CLUSTER_TIMEOUT_S)
            try:
                runs.append(measure("Dask LocalCluster, 2 worker processes", inputs, Path(tmp) / "out3",
                                    scheduler=cluster.scheduler_address))
            finally:
                cluster.close(timeout=CLUSTER_TIMEOUT_S)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{scenarios} scenarios x {args.copies} copies; {machine}")
    print("| mode | groups | frames | wall s | groups/s | frames/s | worker CPU s | peak RSS per worker MB | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(f"| {run.mode} | {run.groups} | {run.frames:,} | {run.seconds:.2f} | {run.groups_per_second:.2f} | "
              f"{run.frames_per_second:,.0f} | {run.worker_cpu_s:.1f} | "
              f"{', '.join(f'{p:.0f}' for p in run.worker_peak_rss_mb)} | {run.load_before:.1f} |")
    for run in runs:
        for error in run.errors:
            print(f"{run.mode}: failed group {error}")
    report = {"machine": machine, "copies": args.copies, "scenarios": scenarios,
              "runs": [asdict(r) | {"groups_per_second": r.groups_per_second, "frames_per_second": r.frames_per_second}
                       for r in runs]}
    (OUT / "bench_batch.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r.failed == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
