"""The incident lab: records every sample scenario from the real Linux kernel in network namespaces."""

# Run as root on Linux:  python3 samples/lab/lab.py [--only SCENARIO ...] [--out DIR]
# Each scenario builds namespaces named wpl-<short>-<role>, records tcpdump on every vantage
# point, runs the Weave-shaped helpers (peer.py) or ordinary traffic (traffic.py), then writes
# <out>/<scenario>/*.pcap, expected.json (ground truth from tshark, see oracle.py) and README.md.

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle  # noqa: E402
import pcapshift  # noqa: E402
from labnet import TRAFFIC_SCRIPT, Lab, LabError, delete_stale_namespaces  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent

A_NAME, B_NAME = "0a:aa:00:00:0a:01", "0a:bb:00:00:0b:02"
A_SHORT, B_SHORT = 0x0A1, 0x0B2
A_CONN, B_CONN = 0x1D2C3B4A59687766, 0x0123456789ABCDEF
VNI_A_TO_B = (B_SHORT << 12) | A_SHORT  # VNI = dst short id << 12 | src short id
VNI_B_TO_A = (A_SHORT << 12) | B_SHORT
OVERLAY_MTU = 1410
DURATION = 6.0


@dataclass
class Recording:
    """What a scenario's run reports back for expected.json."""

    hosts: dict[str, dict[str, Any]]
    analyze: list[tuple[str, str]]  # (host, capture) pairs handed to `weavepcap analyze`
    facts: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    topology: str = ""


@dataclass
class Scenario:
    name: str
    short: str
    root_cause: str
    description: str
    look_for: list[str]
    record: Callable[[Lab, Path, Path], Recording]
    evidence: Callable[[dict[str, list[oracle.Frame]], Recording], list[dict[str, Any]]]
    facts: Callable[[dict[str, list[oracle.Frame]], Recording], dict[str, Any]] = lambda frames, rec: {}
    shifted: tuple[str, float] | None = None  # (capture, seconds) to also keep with a shifted clock


# ---------------------------------------------------------------- topologies and helpers


def v4_routed(lab: Lab, out: Path, *, a_mtu: int = 1500, left_mtu: int = 1500, right_mtu: int = 1500,
              b_mtu: int = 1500) -> tuple[str, str, str]:
    """host-a eth0 10.0.1.2 -- left 10.0.1.1 [router] right 10.0.2.1 -- eth0 10.0.2.2 host-b."""
    a, r, b = lab.add_ns("a"), lab.add_ns("r"), lab.add_ns("b")
    for ns in (a, r, b):
        lab.quiet_ipv6(ns)
    lab.link(a, "eth0", r, "left", a_mtu, left_mtu)
    lab.link(r, "right", b, "eth0", right_mtu, b_mtu)
    lab.addr(a, "eth0", "10.0.1.2/24")
    lab.addr(r, "left", "10.0.1.1/24")
    lab.addr(r, "right", "10.0.2.1/24")
    lab.addr(b, "eth0", "10.0.2.2/24")
    lab.ip(a, "route", "add", "default", "via", "10.0.1.1")
    lab.ip(b, "route", "add", "default", "via", "10.0.2.1")
    lab.sysctl(r, "net.ipv4.ip_forward", "1")
    return a, r, b


def capture_routed(lab: Lab, out: Path, a: str, r: str, b: str) -> None:
    lab.capture("host-a", a, "eth0", out)
    lab.capture("host-a", a, "lo", out)
    lab.capture("host-b", b, "eth0", out)
    lab.capture("host-b", b, "lo", out)
    lab.capture("router", r, "left", out, "router-left")
    lab.capture("router", r, "right", out, "router-right")
    lab.wait_captures_listening()


def routed_hosts(a_addr: str = "10.0.1.2", b_addr: str = "10.0.2.2",
                 r_addrs: tuple[str, str] = ("10.0.1.1", "10.0.2.1"), router: str = "router") -> dict[str, Any]:
    return {
        "host-a": {"addresses": [a_addr], "captures": ["host-a-eth0.pcap", "host-a-lo.pcap"]},
        "host-b": {"addresses": [b_addr], "captures": ["host-b-eth0.pcap", "host-b-lo.pcap"]},
        router: {"addresses": list(r_addrs), "captures": [f"{router}-left.pcap", f"{router}-right.pcap"]},
    }


def weave_analyze() -> list[tuple[str, str]]:
    return [("host-a", "host-a-eth0.pcap"), ("host-a", "host-a-lo.pcap"),
            ("host-b", "host-b-eth0.pcap"), ("host-b", "host-b-lo.pcap")]


def add_fastdp(lab: Lab, a: str, b: str, a_addr: str, b_addr: str, port: int = 6784,
               mtu: int = OVERLAY_MTU, dev: str = "vxlan-6784") -> None:
    lab.vxlan(a, dev, rx_vni=VNI_B_TO_A, tx_vni=VNI_A_TO_B, local=a_addr, remote=b_addr, port=port, mtu=mtu)
    lab.vxlan(b, dev, rx_vni=VNI_A_TO_B, tx_vni=VNI_B_TO_A, local=b_addr, remote=a_addr, port=port, mtu=mtu)
    lab.addr(a, dev, "10.32.0.1/12")
    lab.addr(b, dev, "10.40.0.1/12")


def peer_configs(work: Path, a_addr: str, b_addr: str, overlays: list[str], **common: Any) -> tuple[dict, dict]:
    base = {"duration": DURATION, "overlays": overlays, "family": 6 if ":" in a_addr else 4, "overlay_mtu": OVERLAY_MTU}
    base.update(common)
    a = dict(base, name="host-a", peer_name=A_NAME, features_name=A_NAME, nickname="host-a", short_id=A_SHORT,
             conn_id=A_CONN, uid=0, self_addr=a_addr, peer_addr=b_addr, peer_peer_name=B_NAME, role="dial",
             log=str(work / "host-a.log.json"))
    b = dict(base, name="host-b", peer_name=B_NAME, features_name=B_NAME, nickname="host-b", short_id=B_SHORT,
             conn_id=B_CONN, uid=0, self_addr=b_addr, peer_addr=a_addr, peer_peer_name=A_NAME, role="listen",
             log=str(work / "host-b.log.json"))
    return a, b


def run_peers(lab: Lab, work: Path, pairs: list[tuple[str, dict[str, Any]]],
              extra: Callable[[], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Start the listener(s) first, then the dialer(s); wait for all (bounded); return their event logs."""
    procs = []
    for ns, cfg in sorted(pairs, key=lambda p: p[1]["role"] != "listen"):
        procs.append((lab.start_peer(ns, cfg, work), cfg))
        time.sleep(0.15)
    if extra is not None:
        extra()
    for proc, cfg in procs:
        lab.wait(proc, cfg["duration"] + 15)
    logs = {}
    for _, cfg in procs:
        logs[cfg["name"]] = json.loads(Path(cfg["log"]).read_text())
    return logs


def traffic(lab: Lab, ns: str, *args: str, timeout: float = 20) -> None:
    lab.wait(lab.start(ns, sys.executable, str(TRAFFIC_SCRIPT), *args), timeout)


def events(rec: Recording, host: str, name: str) -> list[dict[str, Any]]:
    return [e for e in rec.logs.get(host, []) if e["event"] == name]


def verified_mtus(rec: Recording) -> dict[str, int]:
    out = {}
    for host in rec.logs:
        found = events(rec, host, "sleeve.mtu_verified")
        if found:
            out[host] = found[-1]["mtu"]
    return out


def emsgsize_seen(rec: Recording) -> dict[str, bool]:
    return {h: any(e["emsgsize"] for e in events(rec, h, "sleeve.pmtu_discovery_result")) for h in rec.logs
            if events(rec, h, "sleeve.pmtu_discovery_result")}


# ---------------------------------------------------------------- evidence helpers


def first(frames: dict[str, list[oracle.Frame]], capture: str, klass: str,
          pred: Callable[[oracle.Frame], bool] = lambda f: True) -> oracle.Frame | None:
    for fr in frames.get(capture, []):
        if fr.klass == klass and pred(fr):
            return fr
    return None


def cite(frames: dict[str, list[oracle.Frame]], capture: str, klass: str, what: str,
         pred: Callable[[oracle.Frame], bool] = lambda f: True) -> list[dict[str, Any]]:
    fr = first(frames, capture, klass, pred)
    if fr is None:
        raise LabError(f"expected evidence missing: {klass} in {capture} ({what})")
    return [{"capture": capture, "frame": fr.number, "klass": klass, "what": what}]


def from_src(addr: str) -> Callable[[oracle.Frame], bool]:
    return lambda f: f.src == addr


def quotes_port(fr: oracle.Frame, port: int) -> bool:
    return str(port) in fr.f.get("udp.dstport", [])


def icmp_mtu(fr: oracle.Frame | None) -> int:
    if fr is None:
        return -1
    return fr.num("icmp.mtu") if fr.f.get("icmp.mtu") else fr.num("icmpv6.mtu")


def heartbeat_facts(frames: dict[str, list[oracle.Frame]], capture: str) -> dict[str, int]:
    hb = first(frames, capture, "weave.fastdp.heartbeat")
    if hb is None:
        return {}
    ip_len = hb.num("ip.len") if hb.f.get("ip.len") else hb.num("ipv6.plen") + 40
    return {"heartbeat_ip_len": ip_len, "heartbeat_frame_len": hb.length, "overlay_mtu": hb.length - 64
            if hb.f.get("ip.len") else hb.length - 84}


# ---------------------------------------------------------------- scenarios


def record_p2_router(lab: Lab, out: Path, work: Path) -> Recording:
    a, r, b = v4_routed(lab, out, right_mtu=1454, b_mtu=1454)
    add_fastdp(lab, a, b, "10.0.1.2", "10.0.2.2")
    capture_routed(lab, out, a, r, b)
    ca, cb = peer_configs(work, "10.0.1.2", "10.0.2.2", ["fastdp", "sleeve"], sleeve_data_frames=3)
    logs = run_peers(lab, work, [(a, ca), (b, cb)])
    lab.stop_captures()
    return Recording(routed_hosts(), weave_analyze(), logs=logs,
                     topology="host-a eth0 (10.0.1.2, MTU 1500) -- left (10.0.1.1, 1500) [router] right "
                              "(10.0.2.1, **1454**) -- eth0 (10.0.2.2, **1454**) host-b")


def evidence_p2_router(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.fastdp.heartbeat", "first 1474-byte fastdp heartbeat host-a -> host-b (DF)",
              from_src("10.0.1.2"))
    ev += cite(frames, "host-a-eth0.pcap", "icmp.frag_needed", "ICMP 3/4 from the router (10.0.1.1), next-hop MTU 1454, "
               "quoting the fastdp heartbeat", lambda f: f.src == "10.0.1.1" and quotes_port(f, 6784))
    ev += cite(frames, "router-left.pcap", "icmp.frag_needed", "the router sends ICMP 3/4 next-hop MTU 1454 to host-a")
    ev += cite(frames, "host-b-lo.pcap", "icmp.frag_needed", "host-b's own heartbeat refused locally (its NIC is 1454): "
               "ICMP 3/4 to itself, only on lo")
    ev += cite(frames, "host-a-eth0.pcap", "weave.sleeve.heartbeat", "sleeve heartbeat (70-byte IP, DF): sleeve works",
               from_src("10.0.1.2"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.sleeve.pmtu_verify", "sleeve PMTU verification frame",
               from_src("10.0.1.2"))
    return ev


def facts_p2_router(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {"path_mtu": icmp_mtu(first(frames, "host-a-eth0.pcap", "icmp.frag_needed"))}
    facts.update(heartbeat_facts(frames, "host-a-eth0.pcap"))
    facts["fastdp_heartbeats_received"] = {h: len(events(rec, h, "fastdp.heartbeat_received")) for h in rec.logs}
    facts["sleeve_mtu_verified"] = verified_mtus(rec)
    facts["pmtu_discovery_emsgsize"] = emsgsize_seen(rec)
    return facts


SCENARIOS: list[Scenario] = [
    Scenario(
        name="p2-router", short="p2r", root_cause="fastdp-heartbeat-exceeds-path-mtu",
        description=(
            "Fast datapath never comes up: host-b sits on a 1454-byte link behind a router, Weave's overlay MTU "
            "is 1410 so every fastdp heartbeat is a 1474-byte frame (IP 1460, DF). The router answers host-a's "
            "heartbeats with ICMP 3/4 next-hop MTU 1454; host-a's kernel caches that PMTU and later heartbeats "
            "never leave host-a. host-b's own heartbeats are refused by its own 1454 NIC (ICMP to itself on lo). "
            "Sleeve heartbeats (70 bytes) are acked, the sleeve PMTU search settles at 1392 and data flows over sleeve."
        ),
        look_for=[
            "host-a-eth0: 1474-byte UDP 6784 heartbeats with DF, then ICMP 3/4 from 10.0.1.1 with MTU 1454.",
            "host-b-eth0: no fastdp heartbeat ever arrives; host-b-lo: ICMP 3/4 from host-b to itself.",
            "Sleeve: heartbeats both ways, the 60001-byte fragmentation test (fragmented at 1500, refragmented "
            "by the router at 1454), PMTU verification frames, TCP 6783 acks (07 01 01, 07 01 02, 07 01 03).",
            "host-b-eth0-shifted.pcap is host-b-eth0.pcap with every timestamp moved +2.5 s.",
        ],
        record=record_p2_router, evidence=evidence_p2_router, facts=facts_p2_router,
        shifted=("host-b-eth0.pcap", 2.5),
    ),
]


# ---------------------------------------------------------------- output


def write_expected(sc: Scenario, out: Path, rec: Recording) -> dict[str, Any]:
    captures = sorted(p.name for p in out.glob("*.pcap"))
    frames = {name: oracle.tshark_frames(out / name) for name in captures}
    evidence = sc.evidence(frames, rec)
    facts = dict(rec.facts)
    facts.update(sc.facts(frames, rec))
    clock_offsets = {host: 0.0 for host in rec.hosts}
    doc: dict[str, Any] = {
        "scenario": sc.name,
        "root_cause": sc.root_cause,
        "description": sc.description,
        "kernel": platform.release(),
        "analyze_args": [f"{host}={cap}" for host, cap in rec.analyze],
        "hosts": rec.hosts,
        "facts": facts,
        "evidence": evidence,
        "clock_offsets": clock_offsets,
        "captures": {name: {"frames": len(frs), "classes": oracle.class_counts(frs)} for name, frs in frames.items()},
    }
    if sc.shifted is not None:
        src, offset = sc.shifted
        host = next(h for h, info in rec.hosts.items() if src in info["captures"])
        doc["shifted_copies"] = {src.replace(".pcap", "-shifted.pcap"): {"of": src, "host": host, "offset_s": offset}}
    (out / "expected.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def write_readme(sc: Scenario, out: Path, rec: Recording, doc: dict[str, Any]) -> None:
    lines = [f"# {sc.name}", "", sc.description, "",
             f"Expected root cause: `{sc.root_cause}`. Recorded by `samples/lab/lab.py --only {sc.name}` "
             f"on Linux {doc['kernel']} (network namespaces, veth, kernel VXLAN, tcpdump).", "",
             "## How it was recorded", "", rec.topology, "",
             "Helpers: `samples/lab/peer.py` stands in for Weave on each host (TCP 6783 control stream, sleeve "
             "on UDP 6783, fastdp heartbeats written into the kernel VXLAN device); see `samples/README.md`.", "",
             "## What to look for", ""]
    lines += [f"- {item}" for item in sc.look_for]
    lines += ["", "## Decisive frames", "", "| capture | frame | what |", "|---|---|---|"]
    lines += [f"| {e['capture']} | {e['frame']} | {e['what']} |" for e in doc["evidence"]]
    lines += ["", "## Captures (frames per class, from tshark)", "", "| capture | frames | classes |", "|---|---|---|"]
    for name, info in doc["captures"].items():
        classes = ", ".join(f"{k} {v}" for k, v in info["classes"].items()) or "(empty)"
        lines.append(f"| {name} | {info['frames']} | {classes} |")
    lines += ["", "Analyze with: `weavepcap analyze " + " ".join(doc["analyze_args"]) + "` (run in this folder)."]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def record_scenario(sc: Scenario, out_root: Path) -> dict[str, Any]:
    out = out_root / sc.name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.pcap"):
        old.unlink()
    lab = Lab(sc.name, sc.short)
    with tempfile.TemporaryDirectory(prefix="wpl-") as tmp:
        try:
            rec = sc.record(lab, out, Path(tmp))
        finally:
            lab.close()
    if sc.shifted is not None:
        src, offset = sc.shifted
        pcapshift.shift(out / src, out / src.replace(".pcap", "-shifted.pcap"), offset)
    doc = write_expected(sc, out, rec)
    write_readme(sc, out, rec, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", help="record only these scenarios")
    parser.add_argument("--out", type=Path, default=SAMPLES, help="output root (default: samples/)")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    unknown = set(args.only or []) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    stale = delete_stale_namespaces()
    if stale:
        print(f"removed stale lab namespaces: {', '.join(stale)}")
    failed = 0
    for sc in chosen:
        started = time.monotonic()
        try:
            doc = record_scenario(sc, args.out)
        except (LabError, OSError) as exc:
            failed += 1
            print(f"{sc.name}: FAILED: {exc}", file=sys.stderr)
            continue
        frames = sum(c["frames"] for c in doc["captures"].values())
        print(f"{sc.name}: {len(doc['captures'])} captures, {frames} frames, {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
