"""Lab plumbing: network namespaces, veth links, tcpdump vantage points and helper processes, all cleaned up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "wpl-"  # namespaces are wpl-<pid>-<scenario short>-<role>; nothing else is ever deleted
LAB_DIR = Path(__file__).resolve().parent
PEER_SCRIPT = LAB_DIR / "peer.py"
TRAFFIC_SCRIPT = LAB_DIR / "traffic.py"


class LabError(RuntimeError):
    pass


def run(*args: str, check: bool = True, timeout: float = 20, input_text: str | None = None) -> str:
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, input=input_text, check=False
    )
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def lab_namespaces() -> list[str]:
    out = run("ip", "netns", "list", check=False)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(PREFIX)]


def owner_pid(name: str) -> int:
    """The pid of the lab run that created a namespace `wpl-<pid>-<short>-<role>` (-1 if not ours)."""
    parts = name.split("-")
    return int(parts[1]) if len(parts) >= 4 and parts[1].isdigit() else -1


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_stale_namespaces() -> list[str]:
    """Delete namespaces a crashed earlier run left behind: ours by prefix, and only if that run is gone.

    Runs going on at the same time (two test sessions) keep theirs: names carry the creator's pid.
    """
    stale = [n for n in lab_namespaces() if owner_pid(n) > 0 and not pid_alive(owner_pid(n))]
    for name in stale:
        run("ip", "netns", "del", name, check=False)
    return stale


@dataclass
class Capture:
    host: str
    ns: str
    iface: str
    path: Path
    proc: subprocess.Popen[bytes]


@dataclass
class Lab:
    """One scenario's namespaces and processes; `close()` removes them all, also after an error."""

    scenario: str
    short: str
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{PREFIX}{os.getpid()}-{self.short}-{role}"

    def add_ns(self, role: str) -> str:
        name = self.ns(role)
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")
        return name

    def ip(self, ns: str, *args: str, check: bool = True) -> str:
        return run("ip", "-n", ns, *args, check=check)

    def sh(self, ns: str, *args: str, check: bool = True, timeout: float = 20, input_text: str | None = None) -> str:
        return run("ip", "netns", "exec", ns, *args, check=check, timeout=timeout, input_text=input_text)

    def sysctl(self, ns: str, key: str, value: str) -> None:
        self.sh(ns, "sysctl", "-q", "-w", f"{key}={value}")

    def quiet_ipv6(self, ns: str) -> None:
        # keeps router solicitations and MLD reports out of IPv4 scenarios
        self.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
        self.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")

    def link(self, ns_a: str, if_a: str, ns_b: str, if_b: str, mtu_a: int = 1500, mtu_b: int = 1500) -> None:
        self.ip(ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        self.ip(ns_a, "link", "set", if_a, "mtu", str(mtu_a), "up")
        self.ip(ns_b, "link", "set", if_b, "mtu", str(mtu_b), "up")

    def addr(self, ns: str, iface: str, cidr: str) -> None:
        if ":" in cidr:
            self.ip(ns, "-6", "addr", "add", cidr, "dev", iface, "nodad")
        else:
            self.ip(ns, "addr", "add", cidr, "dev", iface)

    def vxlan(
        self, ns: str, dev: str, *, rx_vni: int, tx_vni: int, local: str, remote: str, port: int, mtu: int,
        df: str = "set",
    ) -> None:
        """A kernel VXLAN device that receives rx_vni and sends everything to remote with tx_vni."""
        args = ["link", "add", dev, "type", "vxlan", "id", str(rx_vni), "dstport", str(port), "local", local,
                "nolearning", "ttl", "64"]
        if ":" not in local:
            args += ["df", df, "noudpcsum"]
        else:
            args += ["udp6zerocsumtx", "udp6zerocsumrx"]
        self.ip(ns, *args)
        self.ip(ns, "link", "set", dev, "mtu", str(mtu), "up")
        run("bridge", "-n", ns, "fdb", "add", "00:00:00:00:00:00", "dev", dev, "dst", remote,
            "vni", str(tx_vni), "self", "permanent")

    def capture(self, host: str, ns: str, iface: str, out_dir: Path, name: str | None = None) -> None:
        path = out_dir / f"{name or f'{host}-{iface}'}.pcap"
        if path.exists():
            path.unlink()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "tcpdump", "-i", iface, "-w", str(path), "-U", "-n", "-Z", "root"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        self.captures.append(Capture(host, ns, iface, path, proc))

    def wait_captures_listening(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until every tcpdump has printed 'listening on'."""
        deadline = time.monotonic() + timeout
        for cap in self.captures:
            assert cap.proc.stderr is not None
            os.set_blocking(cap.proc.stderr.fileno(), False)
            seen = b""
            while b"listening on" not in seen:
                if time.monotonic() > deadline:
                    raise LabError(f"tcpdump on {cap.ns}/{cap.iface} did not start: {seen.decode(errors='replace')}")
                if cap.proc.poll() is not None:
                    raise LabError(f"tcpdump on {cap.ns}/{cap.iface} exited: {seen.decode(errors='replace')}")
                chunk = cap.proc.stderr.read()
                if chunk:
                    seen += chunk
                else:
                    time.sleep(0.02)
        time.sleep(0.2)  # the "listening" line precedes the first poll of the ring by a hair

    def stop_captures(self, timeout: float = 10.0) -> None:
        time.sleep(0.3)  # let the last packets reach the ring before tcpdump flushes
        for cap in self.captures:
            if cap.proc.poll() is None:
                cap.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for cap in self.captures:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                cap.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                cap.proc.kill()
                cap.proc.wait(timeout=5)

    def start_peer(self, ns: str, config: dict[str, object], work: Path) -> subprocess.Popen[bytes]:
        cfg_path = work / f"{config['name']}.json"
        cfg_path.write_text(json.dumps(config))
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(PEER_SCRIPT), str(cfg_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def start(self, ns: str, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def wait(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
            raise LabError(f"helper {proc.args} overran {timeout} s") from None
        if proc.returncode != 0:
            raise LabError(f"helper {proc.args} failed: {err.decode(errors='replace')[-800:]}")

    def nft(self, ns: str, script: str) -> None:
        self.sh(ns, "nft", "-f", "-", input_text=script)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for name in reversed(self.namespaces):
            run("ip", "netns", "del", name, check=False)
        self.namespaces.clear()
