"""The incident lab: records every sample scenario from the real Linux kernel in network namespaces."""

# Run as root on Linux:  python3 samples/lab/lab.py [--only SCENARIO ...] [--out DIR]
# Each scenario builds namespaces named wpl-<short>-<role>, records tcpdump on every vantage
# point, runs the Weave-shaped helpers (peer.py) or ordinary traffic (traffic.py), then writes
# <out>/<scenario>/*.pcap, expected.json (ground truth from tshark, see oracle.py) and README.md.

from __future__ import annotations

import argparse
import json
import os
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


def peer_configs(work: Path, a_addr: str, b_addr: str, overlays: list[str], *, a_over: dict | None = None,
                 b_over: dict | None = None, **common: Any) -> tuple[dict, dict]:
    base = {"duration": DURATION, "overlays": overlays, "family": 6 if ":" in a_addr else 4, "overlay_mtu": OVERLAY_MTU}
    base.update(common)
    a = dict(base, name="host-a", peer_name=A_NAME, features_name=A_NAME, nickname="host-a", short_id=A_SHORT,
             conn_id=A_CONN, self_addr=a_addr, peer_addr=b_addr, peer_peer_name=B_NAME, role="dial",
             log=str(work / "host-a.log.json"))
    b = dict(base, name="host-b", peer_name=B_NAME, features_name=B_NAME, nickname="host-b", short_id=B_SHORT,
             conn_id=B_CONN, self_addr=b_addr, peer_addr=a_addr, peer_peer_name=A_NAME, role="listen",
             log=str(work / "host-b.log.json"))
    a.update(a_over or {})
    b.update(b_over or {})
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


def first(frames: dict[str, list[oracle.Frame]], capture: str, klass: str | tuple[str, ...],
          pred: Callable[[oracle.Frame], bool] = lambda f: True) -> oracle.Frame | None:
    wanted = (klass,) if isinstance(klass, str) else klass
    for fr in frames.get(capture, []):
        if fr.klass in wanted and pred(fr):
            return fr
    return None


def cite(frames: dict[str, list[oracle.Frame]], capture: str, klass: str | tuple[str, ...], what: str,
         pred: Callable[[oracle.Frame], bool] = lambda f: True) -> list[dict[str, Any]]:
    fr = first(frames, capture, klass, pred)
    if fr is None:
        raise LabError(f"expected evidence missing: {klass} in {capture} ({what})")
    return [{"capture": capture, "frame": fr.number, "klass": fr.klass, "what": what}]


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


def tcp_payload_is(hex_payload: str) -> Callable[[oracle.Frame], bool]:
    return lambda f: f.first("tcp.payload").replace(":", "") == hex_payload


def quoted_ip_len(fr: oracle.Frame | None) -> int:
    """Total length of the packet an ICMP error quotes (the second IP header in the frame)."""
    if fr is None:
        return -1
    lens = fr.f.get("ip.len", [])
    if len(lens) > 1:
        return int(lens[1])
    plens = fr.f.get("ipv6.plen", [])
    return int(plens[1]) + 40 if len(plens) > 1 else -1


def count(frames: dict[str, list[oracle.Frame]], capture: str, klass: str,
          pred: Callable[[oracle.Frame], bool] = lambda f: True) -> int:
    return sum(1 for fr in frames.get(capture, []) if fr.klass == klass and pred(fr))


def helper_facts(rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if any(events(rec, h, "control.features") for h in rec.logs):
        facts["fastdp_heartbeats_received"] = {h: len(events(rec, h, "fastdp.heartbeat_received")) for h in rec.logs}
        facts["sleeve_mtu_verified"] = verified_mtus(rec)
        facts["pmtu_discovery_emsgsize"] = emsgsize_seen(rec)
        facts["fragtest_acked"] = {h: bool(events(rec, h, "sleeve.fragtest_acked")) for h in rec.logs
                                   if events(rec, h, "sleeve.fragtest_sent") or any(
                                       e.get("what") == "fragtest" for e in events(rec, h, "sleeve.sent"))}
    return facts


def forward_drop(rule: str) -> str:
    """An nftables ruleset for the router: drop forwarded packets matching `rule`."""
    return f"table ip wpl {{\n  chain filter_forward {{\n    type filter hook forward priority 0;\n    {rule} drop\n  }}\n}}\n"


ROUTED_TOPOLOGY = ("host-a eth0 (10.0.1.2, MTU {a}) -- left (10.0.1.1, {l}) [router] right (10.0.2.1, {r}) -- "
                   "eth0 (10.0.2.2, {b}) host-b")
FASTDP_ACK = "00000003070000"
STALL_NFT = ["table netdev wpl_stall {", "  chain egress {",
             '    type filter hook egress device "eth0" priority 0; policy drop;', "  }", "}"]


def routed_weave(lab: Lab, out: Path, work: Path, *, mtus: tuple[int, int, int, int] = (1500, 1500, 1500, 1500),
                 router_nft: str = "", fastdp: bool = True, a_over: dict | None = None, b_over: dict | None = None,
                 extra: Callable[[str, str, str], None] | None = None, run_b: bool = True, **common: Any) -> Recording:
    """The usual two-host routed scenario with Weave-shaped peers; returns the recording."""
    a, r, b = v4_routed(lab, out, a_mtu=mtus[0], left_mtu=mtus[1], right_mtu=mtus[2], b_mtu=mtus[3])
    if fastdp:
        add_fastdp(lab, a, b, "10.0.1.2", "10.0.2.2")
    if router_nft:
        lab.nft(r, router_nft)
    capture_routed(lab, out, a, r, b)
    overlays = ["fastdp", "sleeve"] if fastdp else ["sleeve"]
    ca, cb = peer_configs(work, "10.0.1.2", "10.0.2.2", overlays, a_over=a_over, b_over=b_over, **common)
    pairs = [(a, ca), (b, cb)] if run_b else [(a, ca)]
    logs = run_peers(lab, work, pairs, (lambda: extra(a, r, b)) if extra else None)
    lab.stop_captures()
    topo = ROUTED_TOPOLOGY.format(a=mtus[0], l=mtus[1], r=mtus[2], b=mtus[3])
    if router_nft:
        topo += "; router nftables: `" + " ".join(router_nft.split()) + "`"
    return Recording(routed_hosts(), weave_analyze(), logs=logs, topology=topo)


def mtu_facts(frames: dict[str, list[oracle.Frame]], capture: str, icmp_capture: str, icmp_class: str) -> dict[str, Any]:
    icmp = first(frames, icmp_capture, icmp_class)
    facts: dict[str, Any] = {"path_mtu": icmp_mtu(icmp)}
    hb = heartbeat_facts(frames, capture)
    if not hb and icmp is not None:  # the heartbeat never reached the wire: read it from the ICMP quote
        ip_len = quoted_ip_len(icmp)
        outer = 40 if icmp_class == "icmpv6.packet_too_big" else 20
        hb = {"heartbeat_ip_len": ip_len, "heartbeat_frame_len": ip_len + 14, "overlay_mtu": ip_len - outer - 30}
    facts.update(hb)
    return facts


# --- 1 healthy-fastdp


def record_healthy(lab: Lab, out: Path, work: Path) -> Recording:
    def pings(a: str, r: str, b: str) -> None:
        time.sleep(1.5)
        traffic(lab, a, "ping", "10.40.0.1", "3", "0.3", "56")
        traffic(lab, b, "ping", "10.32.0.1", "3", "0.3", "56")

    return routed_weave(lab, out, work, extra=pings, b_over={"fragtest": False})


def evidence_healthy(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-b-eth0.pcap", "weave.fastdp.heartbeat", "host-a's fastdp heartbeat arrives at host-b",
              from_src("10.0.1.2"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.fastdp.heartbeat", "host-b's fastdp heartbeat arrives at host-a",
               from_src("10.0.2.2"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.control", "host-b acks the fastdp heartbeat over TCP (07 00 00)",
               lambda f: f.src == "10.0.2.2" and tcp_payload_is(FASTDP_ACK)(f))
    ev += cite(frames, "host-b-eth0.pcap", "weave.fastdp.data", "container traffic over fastdp (VNI 0xb20a1)",
               from_src("10.0.1.2"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.sleeve.fragtest", "sleeve fragmentation test (first fragment)",
               from_src("10.0.1.2"))
    return ev


def facts_healthy(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {"path_mtu": 1500}
    facts.update(heartbeat_facts(frames, "host-a-eth0.pcap"))
    facts.update(helper_facts(rec))
    return facts


# --- 3 p2-local-mtu


def record_p2_local(lab: Lab, out: Path, work: Path) -> Recording:
    a, b = lab.add_ns("a"), lab.add_ns("b")
    for ns in (a, b):
        lab.quiet_ipv6(ns)
    lab.link(a, "eth0", b, "eth0", 1454, 1454)
    lab.addr(a, "eth0", "10.0.0.1/24")
    lab.addr(b, "eth0", "10.0.0.2/24")
    add_fastdp(lab, a, b, "10.0.0.1", "10.0.0.2")
    for host, ns in (("host-a", a), ("host-b", b)):
        lab.capture(host, ns, "eth0", out)
        lab.capture(host, ns, "lo", out)
    lab.wait_captures_listening()
    ca, cb = peer_configs(work, "10.0.0.1", "10.0.0.2", ["fastdp", "sleeve"], sleeve_data_frames=3,
                          b_over={"fragtest": False})
    logs = run_peers(lab, work, [(a, ca), (b, cb)])
    lab.stop_captures()
    hosts = {"host-a": {"addresses": ["10.0.0.1"], "captures": ["host-a-eth0.pcap", "host-a-lo.pcap"]},
             "host-b": {"addresses": ["10.0.0.2"], "captures": ["host-b-eth0.pcap", "host-b-lo.pcap"]}}
    return Recording(hosts, weave_analyze(), logs=logs,
                     topology="host-a eth0 (10.0.0.1, MTU **1454**) -- eth0 (10.0.0.2, MTU **1454**) host-b, one "
                              "veth link, no router")


def evidence_p2_local(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-lo.pcap", "icmp.frag_needed", "ICMP 3/4 from host-a to itself, MTU 1454, quoting its "
              "own 1460-byte fastdp heartbeat: refused before the wire", lambda f: quotes_port(f, 6784))
    ev += cite(frames, "host-b-lo.pcap", "icmp.frag_needed", "the same on host-b", lambda f: quotes_port(f, 6784))
    ev += cite(frames, "host-a-eth0.pcap", "weave.sleeve.heartbeat", "sleeve heartbeat on the wire: sleeve works",
               from_src("10.0.0.1"))
    return ev


def facts_p2_local(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts = mtu_facts(frames, "host-a-eth0.pcap", "host-a-lo.pcap", "icmp.frag_needed")
    facts["fastdp_heartbeats_on_wire"] = count(frames, "host-a-eth0.pcap", "weave.fastdp.heartbeat") + count(
        frames, "host-b-eth0.pcap", "weave.fastdp.heartbeat")
    facts.update(helper_facts(rec))
    return facts


# --- 4 mtu-blackhole


def record_blackhole(lab: Lab, out: Path, work: Path) -> Recording:
    a, sw, b = lab.add_ns("a"), lab.add_ns("sw"), lab.add_ns("b")
    for ns in (a, sw, b):
        lab.quiet_ipv6(ns)
    # The switch's port toward host-b has MTU 1450. Linux accepts MTU + 18 bytes of L2 header (Ethernet
    # + VLAN) on both the bridge's egress check and the veth's ingress check, so IP packets of up to
    # 1454 bytes pass in both directions and bigger ones vanish silently. The port toward host-a stays
    # 1500: a veth ingress drop there would abort host-a's fragment trains at the sender
    # (ip_do_fragment stops at the first transmit error), which no real switch does.
    lab.link(a, "eth0", sw, "left", 1500, 1500)
    lab.link(sw, "right", b, "eth0", 1450, 1500)
    for family in ("iptables", "ip6tables", "arptables"):
        # a plain L2 switch: no netfilter on bridged frames (br_netfilter would reassemble and
        # refragment the non-DF fragment trains where the host has it loaded)
        lab.sh(sw, "sysctl", "-q", "-w", f"net.bridge.bridge-nf-call-{family}=0", check=False)
    lab.ip(sw, "link", "add", "br0", "type", "bridge")
    lab.ip(sw, "link", "set", "left", "master", "br0")
    lab.ip(sw, "link", "set", "right", "master", "br0")
    lab.ip(sw, "link", "set", "br0", "up")
    lab.addr(a, "eth0", "10.0.0.1/24")
    lab.addr(b, "eth0", "10.0.0.2/24")
    add_fastdp(lab, a, b, "10.0.0.1", "10.0.0.2")
    for host, ns in (("host-a", a), ("host-b", b)):
        lab.capture(host, ns, "eth0", out)
        lab.capture(host, ns, "lo", out)
    lab.capture("switch", sw, "left", out, "switch-left")
    lab.capture("switch", sw, "right", out, "switch-right")
    lab.wait_captures_listening()
    ca, cb = peer_configs(work, "10.0.0.1", "10.0.0.2", ["fastdp", "sleeve"], sleeve_data_frames=3,
                          b_over={"fragtest": False}, duration=7.0)

    def pings() -> None:
        time.sleep(1.0)
        traffic(lab, a, "ping", "10.0.0.2", "3", "0.3", "56", "df")

    logs = run_peers(lab, work, [(a, ca), (b, cb)], pings)
    lab.stop_captures()
    hosts = {"host-a": {"addresses": ["10.0.0.1"], "captures": ["host-a-eth0.pcap", "host-a-lo.pcap"]},
             "host-b": {"addresses": ["10.0.0.2"], "captures": ["host-b-eth0.pcap", "host-b-lo.pcap"]},
             "switch": {"addresses": [], "captures": ["switch-left.pcap", "switch-right.pcap"]}}
    return Recording(hosts, weave_analyze(), logs=logs,
                     topology="host-a eth0 (10.0.0.1, MTU 1500) -- left (1500) [bridge br0, no br_netfilter] right "
                              "(**1450**) -- eth0 (10.0.0.2, MTU 1500) host-b; no router, no ICMP. Largest IP packet "
                              "passed either way: 1454 (Linux allows 18 bytes of Ethernet + VLAN header over the "
                              "port MTU)")


def evidence_blackhole(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.fastdp.heartbeat", "1474-byte fastdp heartbeat leaves host-a "
              "(DF) and is never seen on the switch or at host-b, and no ICMP comes back", from_src("10.0.0.1"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.sleeve.pmtu_verify", "1500-byte sleeve PMTU verification frame, "
               "lost without ICMP", lambda f: f.src == "10.0.0.1" and f.num("ip.len") == 1500)
    ev += cite(frames, "host-b-eth0.pcap", "weave.sleeve.heartbeat", "small sleeve heartbeats pass",
               from_src("10.0.0.1"))
    ev += cite(frames, "host-b-eth0.pcap", "other", "small ping (ICMP echo) passes",
               lambda f: f.src == "10.0.0.1" and f.first("icmp.type") == "8")
    return ev


def facts_blackhole(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {"path_mtu": 1454}
    facts.update(heartbeat_facts(frames, "host-a-eth0.pcap"))
    facts["icmp_frag_needed_anywhere"] = sum(count(frames, c, "icmp.frag_needed") for c in frames)
    facts["fastdp_heartbeats_at_host_b"] = count(frames, "host-b-eth0.pcap", "weave.fastdp.heartbeat",
                                                 from_src("10.0.0.1"))
    facts.update(helper_facts(rec))
    return facts


# --- 5 p1-tx-stall


def record_p1(lab: Lab, out: Path, work: Path) -> Recording:
    a, r, b = v4_routed(lab, out)
    add_fastdp(lab, a, b, "10.0.1.2", "10.0.2.2")
    # short neighbour timers on the router so its ARP for the silent host shows within seconds
    for key, value in (("base_reachable_time_ms", "1000"), ("delay_first_probe_time", "2"), ("retrans_time_ms", "1000")):
        lab.sysctl(r, f"net.ipv4.neigh.left.{key}", value)
    capture_routed(lab, out, a, r, b)
    ca, cb = peer_configs(work, "10.0.1.2", "10.0.2.2", ["fastdp", "sleeve"], duration=7.0,
                          tcp_heartbeat_interval=1.0,
                          a_over={"stall_after_probe": STALL_NFT, "stall_delay": 1.0},
                          b_over={"fragtest": False, "slow_interval": 1.0})
    logs = run_peers(lab, work, [(a, ca), (b, cb)])
    lab.stop_captures()
    topo = ROUTED_TOPOLOGY.format(a=1500, l=1500, r=1500, b=1500)
    topo += ("; 1 s after its frag test and DF probe host-a applies `" + " ".join(" ".join(STALL_NFT).split())
             + "` (nftables netdev egress drop on eth0: nothing it sends reaches the wire or its own tcpdump)")
    return Recording(routed_hosts(), weave_analyze(), logs=logs, topology=topo)


def last_from(frames: dict[str, list[oracle.Frame]], capture: str, addr: str) -> oracle.Frame | None:
    found = [fr for fr in frames.get(capture, []) if fr.src == addr]
    return found[-1] if found else None


def evidence_p1(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.sleeve.fragtest", "host-a's 60001-byte fragmentation test (first "
              "fragment); the 60000-byte DF probe right after it failed locally with EMSGSIZE", from_src("10.0.1.2"))
    last = last_from(frames, "host-a-eth0.pcap", "10.0.1.2")
    if last is None:
        raise LabError("p1-tx-stall: host-a sent nothing")
    ev += [{"capture": "host-a-eth0.pcap", "frame": last.number, "klass": last.klass,
            "what": "the last frame host-a ever transmits: after this only host-b and the router speak"}]
    ev += cite(frames, "host-b-eth0.pcap", ("weave.control", "weave.control.heartbeat"), "host-b retransmits on the "
               "control connection (no ACK from host-a)",
               lambda f: f.src == "10.0.2.2" and bool(f.f.get("tcp.analysis.retransmission")))
    ev += cite(frames, "host-a-eth0.pcap", "arp", "the router asks for host-a's MAC; host-a never answers",
               lambda f: f.first("arp.opcode") == "1" and f.first("arp.dst.proto_ipv4") == "10.0.1.2")
    ev += cite(frames, "host-a-eth0.pcap", "weave.fastdp.heartbeat", "host-b's heartbeats keep arriving at host-a",
               lambda f: f.src == "10.0.2.2" and f.number > last.number)
    return ev


def facts_p1(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {"path_mtu": 1500}
    facts.update(heartbeat_facts(frames, "host-a-eth0.pcap"))
    stalled = events(rec, "host-a", "host.tx_stalled")
    facts["tx_stalled_host"] = "host-a"
    facts["tx_stall_applied"] = bool(stalled and stalled[0]["ok"])
    last = last_from(frames, "host-a-eth0.pcap", "10.0.1.2")
    facts["host_a_last_tx_frame"] = last.number if last else -1
    facts.update(helper_facts(rec))
    return facts


# --- 6 fastdp-port-blocked


def record_fastdp_blocked(lab: Lab, out: Path, work: Path) -> Recording:
    def pings(a: str, r: str, b: str) -> None:
        time.sleep(1.5)
        traffic(lab, a, "ping", "10.40.0.1", "2", "0.3", "56")

    nft = forward_drop("udp dport 6784")
    return routed_weave(lab, out, work, router_nft=nft, extra=pings, sleeve_data_frames=3,
                        b_over={"fragtest": False})


def evidence_fastdp_blocked(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "router-left.pcap", "weave.fastdp.heartbeat", "host-a's fastdp heartbeat reaches the router "
              "and is never forwarded (router-right never shows UDP 6784), no ICMP", from_src("10.0.1.2"))
    ev += cite(frames, "router-left.pcap", "weave.fastdp.data", "a small fastdp frame (inner ARP/ICMP) is dropped "
               "too: size does not matter", from_src("10.0.1.2"))
    ev += cite(frames, "host-b-eth0.pcap", "weave.sleeve.pmtu_verify", "a 1500-byte sleeve verification frame "
               "arrives: the path carries 1500-byte DF packets", lambda f: f.num("ip.len") == 1500)
    return ev


def facts_fastdp_blocked(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {"path_mtu": 1500, "blocked": "udp dport 6784 (router forward chain, drop)"}
    facts.update(heartbeat_facts(frames, "host-a-eth0.pcap"))
    facts["fastdp_frames_from_host_a_at_router_right"] = count(
        frames, "router-right.pcap", "weave.fastdp.heartbeat", from_src("10.0.1.2")) + count(
        frames, "router-right.pcap", "weave.fastdp.data", from_src("10.0.1.2"))
    facts.update(helper_facts(rec))
    return facts


# --- 7 sleeve-port-blocked


def record_sleeve_blocked(lab: Lab, out: Path, work: Path) -> Recording:
    nft = forward_drop("udp dport 6783")
    return routed_weave(lab, out, work, router_nft=nft, fastdp=False, forwarder_timeout=2.0, max_dials=3,
                        redial_initial=0.5)


def evidence_sleeve_blocked(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.control", "control connection opens (SYN)",
              lambda f: f.src == "10.0.1.2" and f.first("tcp.flags.syn") in ("1", "True"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.sleeve.heartbeat", "host-a's sleeve heartbeat; none reaches host-b",
               from_src("10.0.1.2"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.control", "no working forwarders: host-a resets the connection",
               lambda f: f.src == "10.0.1.2" and f.first("tcp.flags.reset") in ("1", "True"))
    syns = [f for f in frames["host-a-eth0.pcap"] if f.klass == "weave.control" and f.src == "10.0.1.2"
            and f.first("tcp.flags.syn") in ("1", "True")]
    if len(syns) < 2:
        raise LabError("sleeve-port-blocked: no redial recorded")
    ev += [{"capture": "host-a-eth0.pcap", "frame": syns[1].number, "klass": "weave.control", "what": "redial (SYN)"}]
    return ev


def facts_sleeve_blocked(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    cap = frames["host-a-eth0.pcap"]
    facts: dict[str, Any] = {"blocked": "udp dport 6783 (router forward chain, drop)", "overlays": "sleeve"}
    facts["connections"] = sum(1 for f in cap if f.klass == "weave.control" and f.src == "10.0.1.2"
                               and f.first("tcp.flags.syn") in ("1", "True"))
    facts["resets"] = sum(1 for f in cap if f.klass == "weave.control" and f.first("tcp.flags.reset") in ("1", "True"))
    facts["sleeve_heartbeats_at_host_b"] = count(frames, "host-b-eth0.pcap", "weave.sleeve.heartbeat")
    facts.update(helper_facts(rec))
    return facts


# --- 8 control-refused


def record_refused(lab: Lab, out: Path, work: Path) -> Recording:
    return routed_weave(lab, out, work, run_b=False, max_dials=5, redial_initial=0.5)


def evidence_refused(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.control", "SYN to 10.0.2.2:6783",
              lambda f: f.src == "10.0.1.2" and f.first("tcp.flags.syn") in ("1", "True"))
    ev += cite(frames, "host-a-eth0.pcap", "weave.control", "RST from host-b: nothing listens on TCP 6783",
               lambda f: f.src == "10.0.2.2" and f.first("tcp.flags.reset") in ("1", "True"))
    return ev


def facts_refused(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    cap = frames["host-a-eth0.pcap"]
    return {"syn_attempts": sum(1 for f in cap if f.src == "10.0.1.2" and f.first("tcp.flags.syn") in ("1", "True")),
            "resets": sum(1 for f in cap if f.src == "10.0.2.2" and f.first("tcp.flags.reset") in ("1", "True"))}


# --- 9 fragments-dropped


def record_frags_dropped(lab: Lab, out: Path, work: Path) -> Recording:
    nft = forward_drop("ip frag-off & 0x3fff != 0")
    return routed_weave(lab, out, work, router_nft=nft, fragtest_repeat=2.5, b_over={"fragtest": False})


def evidence_frags_dropped(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "router-left.pcap", "weave.sleeve.fragtest", "host-a's fragmentation test reaches the router "
              "(first fragment) and no fragment leaves it", from_src("10.0.1.2"))
    ev += cite(frames, "host-b-eth0.pcap", "weave.fastdp.heartbeat", "fast datapath itself works (heartbeat "
               "arrives)", from_src("10.0.1.2"))
    return ev


def facts_frags_dropped(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {"path_mtu": 1500, "blocked": "IPv4 fragments (router forward chain, drop)"}
    facts.update(heartbeat_facts(frames, "host-a-eth0.pcap"))
    facts["fragtest_fragments_sent"] = count(frames, "host-a-eth0.pcap", "weave.sleeve.fragtest", from_src("10.0.1.2"))
    facts["fragtest_fragments_at_host_b"] = count(frames, "host-b-eth0.pcap", "weave.sleeve.fragtest")
    facts.update(helper_facts(rec))
    return facts


# --- 10 ipv6-ptb


def record_ipv6(lab: Lab, out: Path, work: Path) -> Recording:
    a, r, b = lab.add_ns("a"), lab.add_ns("r"), lab.add_ns("b")
    lab.link(a, "eth0", r, "left", 1500, 1500)
    lab.link(r, "right", b, "eth0", 1454, 1454)
    for ns, dev, cidr in ((a, "eth0", "fd00:1::2/64"), (r, "left", "fd00:1::1/64"), (r, "right", "fd00:2::1/64"),
                          (b, "eth0", "fd00:2::2/64")):
        lab.addr(ns, dev, cidr)
    lab.ip(a, "-6", "route", "add", "default", "via", "fd00:1::1")
    lab.ip(b, "-6", "route", "add", "default", "via", "fd00:2::1")
    lab.sysctl(r, "net.ipv6.conf.all.forwarding", "1")
    add_fastdp(lab, a, b, "fd00:1::2", "fd00:2::2")
    time.sleep(0.5)  # let link-local setup chatter pass before the captures start
    capture_routed(lab, out, a, r, b)
    ca, cb = peer_configs(work, "fd00:1::2", "fd00:2::2", ["fastdp", "sleeve"], fragtest=False, sleeve_data_frames=0)
    logs = run_peers(lab, work, [(a, ca), (b, cb)])
    lab.stop_captures()
    return Recording(routed_hosts("fd00:1::2", "fd00:2::2", ("fd00:1::1", "fd00:2::1")), weave_analyze(), logs=logs,
                     topology="IPv6 only: host-a eth0 (fd00:1::2, MTU 1500) -- left (fd00:1::1) [router] right "
                              "(fd00:2::1, **1454**) -- eth0 (fd00:2::2, **1454**) host-b; VXLAN over IPv6 "
                              "(zero UDP checksums allowed both ways); no fragmentation test")


def evidence_ipv6(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.fastdp.heartbeat", "fastdp heartbeat over IPv6 (IP 1480, "
              "frame 1494)", from_src("fd00:1::2"))
    ev += cite(frames, "host-a-eth0.pcap", "icmpv6.packet_too_big", "ICMPv6 packet too big from the router, MTU 1454",
               from_src("fd00:1::1"))
    return ev


def facts_ipv6(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts = mtu_facts(frames, "host-a-eth0.pcap", "host-a-eth0.pcap", "icmpv6.packet_too_big")
    facts["underlay"] = "ipv6"
    facts.update(helper_facts(rec))
    return facts


# --- 11 flannel-8472-mtu


def record_flannel(lab: Lab, out: Path, work: Path) -> Recording:
    a, r, b = v4_routed(lab, out, right_mtu=1454, b_mtu=1454)
    for ns, local, remote, addr in ((a, "10.0.1.2", "10.0.2.2", "10.244.0.1/16"),
                                    (b, "10.0.2.2", "10.0.1.2", "10.244.1.1/16")):
        # flannel-style: VNI 1 both ways, UDP 8472; `df inherit` copies the inner DF (TCP sets it)
        lab.vxlan(ns, "flannel.1", rx_vni=1, tx_vni=1, local=local, remote=remote, port=8472, mtu=1450, df="inherit")
        lab.addr(ns, "flannel.1", addr)
    capture_routed(lab, out, a, r, b)
    traffic(lab, a, "ping", "10.244.1.1", "2", "0.3", "56")
    traffic(lab, a, "ping", "10.244.1.1", "3", "0.3", "1422", "df")
    traffic(lab, b, "ping", "10.244.0.1", "2", "0.3", "56")
    lab.stop_captures()
    hosts = routed_hosts()
    return Recording(hosts, [("host-a", "host-a-eth0.pcap"), ("host-a", "host-a-lo.pcap"),
                             ("host-b", "host-b-eth0.pcap"), ("host-b", "host-b-lo.pcap")],
                     topology=ROUTED_TOPOLOGY.format(a=1500, l=1500, r="**1454**", b="**1454**")
                     + "; kernel VXLAN `flannel.1` (VNI 1, dstport 8472, MTU 1450, df inherit) on each host, "
                       "no Weave; small pings, then 1450-byte DF pings (outer IP 1500) from host-a")


def evidence_flannel(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "overlay.vxlan", "VXLAN on UDP 8472, VNI 1 (not Weave)", from_src("10.0.1.2"))
    ev += cite(frames, "host-a-eth0.pcap", "icmp.frag_needed", "ICMP 3/4 from the router, MTU 1454, quoting a 1500-"
               "byte VXLAN 8472 packet", lambda f: f.src == "10.0.1.1" and quotes_port(f, 8472))
    return ev


def facts_flannel(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    icmp = first(frames, "host-a-eth0.pcap", "icmp.frag_needed")
    return {"path_mtu": icmp_mtu(icmp), "vxlan_port": 8472, "vni": 1, "overlay_mtu": 1450,
            "outer_ip_len": quoted_ip_len(icmp), "weave_frames": sum(
                1 for frs in frames.values() for f in frs if f.klass.startswith("weave."))}


# --- 12 no-overlay


def record_no_overlay(lab: Lab, out: Path, work: Path) -> Recording:
    a, r, b = v4_routed(lab, out)
    capture_routed(lab, out, a, r, b)
    traffic(lab, a, "ping", "10.0.2.2", "3", "0.3", "56")
    server = lab.start(b, sys.executable, str(TRAFFIC_SCRIPT), "tcp-server", "10.0.2.2", "8080", "5")
    dns = lab.start(b, sys.executable, str(TRAFFIC_SCRIPT), "dns-server", "10.0.2.2", "3")
    time.sleep(0.3)
    traffic(lab, a, "tcp-client", "10.0.2.2", "8080")
    traffic(lab, a, "dns-client", "10.0.2.2", "3")
    lab.wait(server, 10)
    lab.wait(dns, 10)
    lab.stop_captures()
    return Recording(routed_hosts(), weave_analyze(),
                     topology=ROUTED_TOPOLOGY.format(a=1500, l=1500, r=1500, b=1500)
                     + "; traffic: 3 pings, one HTTP-like TCP exchange on 8080 (3000 bytes back), 3 DNS-like "
                       "queries on UDP 53")


def evidence_no_overlay(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "other", "ICMP echo request", lambda f: f.first("icmp.type") == "8")
    ev += cite(frames, "host-a-eth0.pcap", "other", "TCP SYN to port 8080",
               lambda f: f.first("tcp.dstport") == "8080" and f.first("tcp.flags.syn") in ("1", "True"))
    ev += cite(frames, "host-a-eth0.pcap", "other", "DNS-like query to UDP 53", lambda f: f.first("udp.dstport") == "53")
    return ev


def facts_no_overlay(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    return {"weave_frames": sum(1 for frs in frames.values() for f in frs if f.klass.startswith("weave."))}


# --- 13 xss-nickname

XSS_NICKNAME = "<script>alert('weavepcap')</script>"
XSS_PEER_NAME = "<img src=x onerror=alert(1)>"


def record_xss(lab: Lab, out: Path, work: Path) -> Recording:
    return routed_weave(lab, out, work, fragtest=False,
                        a_over={"nickname": XSS_NICKNAME, "features_name": XSS_PEER_NAME}, duration=4.0)


def evidence_xss(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.control", "host-a's features map carrying NickName "
              f"{XSS_NICKNAME} and Name {XSS_PEER_NAME}",
              lambda f: f.src == "10.0.1.2" and b"NickName".hex() in f.first("tcp.payload").replace(":", ""))
    ev += cite(frames, "host-b-eth0.pcap", "weave.fastdp.heartbeat", "heartbeat arrives: the link is healthy",
               from_src("10.0.1.2"))
    return ev


def facts_xss(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    facts: dict[str, Any] = {"path_mtu": 1500, "nickname": XSS_NICKNAME, "peer_name": XSS_PEER_NAME}
    facts.update(heartbeat_facts(frames, "host-a-eth0.pcap"))
    facts.update(helper_facts(rec))
    return facts


# --- 14 esp-blocked

ESP_OVERLAY_MTU = 1376  # weave >= 1.9's default with encryption: the ESP heartbeat is an IP packet of 1460
SPI_A_TO_B, SPI_B_TO_A = 0x1A2B3C4D, 0x0C0FFEE5  # inbound SPIs the receivers would pick (>= 0x100)
# a fixed test key: 32-byte AES-256 key + 4-byte salt, as rfc4106(gcm(aes)) takes it
ESP_TEST_KEY = "0x" + "5765617665706361702d6c61622d746573742d6b65792d6e6f742d7365637265" + "74212121"


def kernel_esp(lab: Lab, a: str, b: str, a_addr: str, b_addr: str) -> bool:
    """Kernel IPsec ESP transport mode between the hosts for UDP to the peer's 6784, as weave sets it up.

    Returns False (and sets nothing up) when the kernel lacks ESP or rfc4106(gcm(aes)) (CONFIG_INET_ESP,
    CONFIG_CRYPTO_GCM): the scenario then sends ESP from a raw socket instead (see record_esp_blocked).
    """
    for ns, local, remote, spi_out, spi_in in ((a, a_addr, b_addr, SPI_A_TO_B, SPI_B_TO_A),
                                               (b, b_addr, a_addr, SPI_B_TO_A, SPI_A_TO_B)):
        for src, dst, spi in ((local, remote, spi_out), (remote, local, spi_in)):
            try:
                lab.ip(ns, "xfrm", "state", "add", "src", src, "dst", dst, "proto", "esp", "spi", hex(spi),
                       "reqid", str(spi), "mode", "transport", "replay-window", "256",
                       "aead", "rfc4106(gcm(aes))", ESP_TEST_KEY, "128")
            except LabError:
                if ns == a and src == local:
                    return False  # nothing set up yet: the kernel cannot do it
                raise
        lab.ip(ns, "xfrm", "policy", "add", "src", f"{local}/32", "dst", f"{remote}/32", "proto", "udp", "dport",
               "6784", "dir", "out", "tmpl", "src", local, "dst", remote, "proto", "esp", "reqid", str(spi_out),
               "mode", "transport")
        lab.ip(ns, "xfrm", "policy", "add", "src", f"{remote}/32", "dst", f"{local}/32", "proto", "udp", "dport",
               "6784", "dir", "in", "tmpl", "src", remote, "dst", local, "proto", "esp", "reqid", str(spi_in),
               "mode", "transport")
    return True


def record_esp_blocked(lab: Lab, out: Path, work: Path) -> Recording:
    a, r, b = v4_routed(lab, out)
    lab.nft(r, forward_drop("ip protocol esp"))
    in_kernel = kernel_esp(lab, a, b, "10.0.1.2", "10.0.2.2")
    if in_kernel:
        add_fastdp(lab, a, b, "10.0.1.2", "10.0.2.2", mtu=ESP_OVERLAY_MTU)
        esp_a: dict[str, Any] = {}
        esp_b: dict[str, Any] = {}
    else:
        esp_a = {"esp_spi_out": SPI_A_TO_B, "vni_out": VNI_A_TO_B}
        esp_b = {"esp_spi_out": SPI_B_TO_A, "vni_out": VNI_B_TO_A}
    capture_routed(lab, out, a, r, b)
    ca, cb = peer_configs(work, "10.0.1.2", "10.0.2.2", ["fastdp", "sleeve"], a_over=esp_a, b_over=dict(
        esp_b, fragtest=False), overlay_mtu=ESP_OVERLAY_MTU, encrypt_control=True, sleeve_data_frames=3)
    logs = run_peers(lab, work, [(a, ca), (b, cb)])
    lab.stop_captures()
    how = ("kernel IPsec: `ip xfrm state` rfc4106(gcm(aes)) transport mode with a fixed test key, `ip xfrm policy` "
           "selecting UDP to the peer's 6784; the kernel VXLAN device's heartbeats leave as ESP" if in_kernel else
           "ESP from a raw IPPROTO_ESP socket (the recording kernel has no CONFIG_INET_ESP / rfc4106(gcm(aes)), so "
           "`ip xfrm state add` fails): the helper lays out VXLAN-in-ESP exactly as transport-mode rfc4106 does "
           "(SPI, sequence, 8-byte IV, ciphertext with padding and next header 17, 16-byte ICV; the cipher is a "
           "stand-in), the kernel writes the IP header (protocol 50, DF, TTL 64), routes it and the router drops it")
    topo = ROUTED_TOPOLOGY.format(a=1500, l=1500, r=1500, b=1500)
    topo += ("; router nftables: `" + " ".join(forward_drop("ip protocol esp").split()) + "`. Encrypted fastdp: "
             + how + f". SPIs 0x{SPI_A_TO_B:x} (host-a -> host-b) and 0x{SPI_B_TO_A:x} (host-b -> host-a), overlay MTU "
             f"{ESP_OVERLAY_MTU}. TCP 6783 uses the encrypted handshake (flag 01 + 32-byte key, then 4-byte length + "
             "sealed body: 16-byte tag + ciphertext; the lab's cipher is a SHA-256 keystream stand-in for NaCl "
             "secretbox). Sleeve is left unencrypted (as weave's --trusted-subnets would, simplified) so its "
             "heartbeats and PMTU verification stay readable")
    rec = Recording(routed_hosts(), weave_analyze(), logs=logs, topology=topo)
    rec.facts["esp_source"] = "kernel xfrm" if in_kernel else "raw socket (kernel lacks ESP)"
    return rec


def evidence_esp_blocked(frames: dict[str, list[oracle.Frame]], rec: Recording) -> list[dict[str, Any]]:
    ev = cite(frames, "host-a-eth0.pcap", "weave.fastdp.esp", "host-a's first ESP packet (encrypted fastdp "
              "heartbeat, IP 1460, DF) to host-b", from_src("10.0.1.2"))
    ev += cite(frames, "router-left.pcap", "weave.fastdp.esp", "the ESP packet reaches the router and is never "
               "forwarded (router-right and host-b-eth0 show no ESP from host-a), no ICMP", from_src("10.0.1.2"))
    ev += cite(frames, "host-b-eth0.pcap", "weave.fastdp.esp", "host-b's first ESP packet to host-a; host-a-eth0 "
               "never shows it either", from_src("10.0.2.2"))
    ev += cite(frames, "host-b-eth0.pcap", "weave.sleeve.heartbeat", "host-a's sleeve heartbeat arrives: UDP works, "
               "only protocol 50 is dropped", from_src("10.0.1.2"))
    return ev


def facts_esp_blocked(frames: dict[str, list[oracle.Frame]], rec: Recording) -> dict[str, Any]:
    esp = first(frames, "host-a-eth0.pcap", "weave.fastdp.esp", from_src("10.0.1.2"))
    facts: dict[str, Any] = {"path_mtu": 1500, "blocked": "IP protocol 50 (router forward chain, drop)",
                             "overlay_mtu": ESP_OVERLAY_MTU}
    if esp is not None:
        facts.update({"heartbeat_ip_len": esp.num("ip.len"), "heartbeat_frame_len": esp.length,
                      "heartbeat_df": esp.flag("ip.flags.df"), "esp_spi": esp.num("esp.spi")})
    facts["esp_sent_by_host"] = {"host-a": count(frames, "host-a-eth0.pcap", "weave.fastdp.esp", from_src("10.0.1.2")),
                         "host-b": count(frames, "host-b-eth0.pcap", "weave.fastdp.esp", from_src("10.0.2.2"))}
    facts["esp_received_by_host"] = {"host-a": count(frames, "host-a-eth0.pcap", "weave.fastdp.esp", from_src("10.0.2.2")),
                             "host-b": count(frames, "host-b-eth0.pcap", "weave.fastdp.esp", from_src("10.0.1.2"))}
    facts["esp_at_router_right"] = count(frames, "router-right.pcap", "weave.fastdp.esp", from_src("10.0.1.2"))
    facts.update(helper_facts(rec))
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
    Scenario(
        name="healthy-fastdp", short="ok", root_cause="healthy",
        description=(
            "A healthy Weave link over a router with 1500-byte MTUs everywhere: fastdp heartbeats (1474-byte frames, "
            "overlay MTU 1410) both ways, each acked once over TCP (07 00 00), then the slow cadence; container pings "
            "over the fast datapath in both directions; sleeve in the background (heartbeats, host-a's fragmentation "
            "test, PMTU verified at 1438)."
        ),
        look_for=[
            "UDP 6784 heartbeats in both directions on both hosts; TCP 6783 acks `00 00 00 03 07 00 00`.",
            "fastdp data: ARP and ICMP echo inside VXLAN, VNI 0xb20a1 (host-a -> host-b) and 0xa10b2 (back).",
            "Sleeve heartbeats, one 60001-byte fragmentation test (41 fragments), PMTU verification at 1500.",
        ],
        record=record_healthy, evidence=evidence_healthy, facts=facts_healthy,
    ),
    Scenario(
        name="p2-local-mtu", short="p2l", root_cause="fastdp-heartbeat-exceeds-path-mtu",
        description=(
            "The hosts' own underlay MTU is 1454 while Weave's overlay MTU is 1410: each fastdp heartbeat would be an "
            "IP packet of 1460 bytes with DF, so the kernel refuses it before the wire and sends ICMP 3/4 (MTU 1454) "
            "to its own address, visible only on lo. No heartbeat ever appears on eth0; sleeve works (verified 1392)."
        ),
        look_for=[
            "host-a-lo / host-b-lo: ICMP 3/4 from the host to itself, next-hop MTU 1454, quoting a 1460-byte UDP "
            "6784 packet (the heartbeat).",
            "eth0 captures: no UDP 6784 at all; sleeve heartbeats, verification frames of 1454 acked.",
        ],
        record=record_p2_local, evidence=evidence_p2_local, facts=facts_p2_local,
    ),
    Scenario(
        name="mtu-blackhole", short="bh", root_cause="pmtu-blackhole",
        description=(
            "A silent MTU black hole: host-a and host-b (MTU 1500) are joined by a switch whose ports only pass IP "
            "packets up to 1454 bytes. The 1474-byte fastdp heartbeats (DF) vanish without any ICMP; sleeve's "
            "verification frames of 1500 bytes vanish too and its binary search settles at 1454 (MTU 1392); the "
            "1500-byte fragments of the fragmentation test vanish as well (only the short last fragment arrives), so "
            "it is never acked. Small pings and sleeve heartbeats pass."
        ),
        look_for=[
            "host-a-eth0: heartbeats leave; switch-left/-right and host-b-eth0 never show them; no ICMP anywhere.",
            "Sleeve PMTU verification: 1500 unanswered (resent at 10, 20, 40 ... ms), then the binary search.",
            "Small ICMP echo requests and replies pass.",
        ],
        record=record_blackhole, evidence=evidence_blackhole, facts=facts_blackhole,
    ),
    Scenario(
        name="p1-tx-stall", short="p1", root_cause="tx-stall-after-pmtu-probe",
        description=(
            "host-a runs the sleeve fragmentation test and the 60000-byte DF discovery probe (EMSGSIZE), then its "
            "transmissions stop (an nftables netdev egress drop: exactly what a wedged NIC looks like from outside). "
            "host-b keeps sending: TCP retransmissions on the control connection, fastdp and sleeve heartbeats; "
            "the router's ARP requests for host-a go unanswered."
        ),
        look_for=[
            "host-a-eth0: host-a's last transmitted frame, then only incoming traffic.",
            "host-b-eth0 / host-a-eth0: TCP 6783 retransmissions from host-b; heartbeats from host-b continue.",
            "router-left / host-a-eth0: ARP who-has 10.0.1.2 repeated, never answered.",
        ],
        record=record_p1, evidence=evidence_p1, facts=facts_p1,
    ),
    Scenario(
        name="fastdp-port-blocked", short="fb", root_cause="fastdp-port-blocked",
        description=(
            "The router drops UDP destination port 6784 (a firewall rule), whatever the size: fastdp heartbeats and "
            "small fastdp data frames reach the router and go no further, with no ICMP. The path carries 1500-byte "
            "DF packets (sleeve verifies 1438), so this is not an MTU problem; sleeve works and carries the data."
        ),
        look_for=[
            "router-left: UDP 6784 from both hosts' directions; router-right/host-b: only host-b's own UDP 6784.",
            "A small fastdp frame (inner ARP) dropped just like the 1474-byte heartbeats.",
            "Sleeve verification frame of 1500 bytes acked.",
        ],
        record=record_fastdp_blocked, evidence=evidence_fastdp_blocked, facts=facts_fastdp_blocked,
    ),
    Scenario(
        name="sleeve-port-blocked", short="sb", root_cause="sleeve-port-blocked",
        description=(
            "The router drops UDP port 6783 and the peers run sleeve only: the control connection opens, host-a's "
            "sleeve heartbeats (0.5 s) are never answered, after the (scaled) 2 s forwarder timeout host-a resets "
            "the connection (RST, SO_LINGER 0) and redials, again and again."
        ),
        look_for=[
            "host-a-eth0: SYN, handshake, 70-byte sleeve heartbeats every 0.5 s, RST, new SYN.",
            "host-b-eth0: the TCP connection but no UDP 6783 at all.",
        ],
        record=record_sleeve_blocked, evidence=evidence_sleeve_blocked, facts=facts_sleeve_blocked,
    ),
    Scenario(
        name="control-refused", short="cr", root_cause="control-connection-refused",
        description=(
            "Nothing listens on TCP 6783 at host-b: every SYN from host-a is answered by a RST from host-b's kernel; "
            "host-a redials with growing back-off (scaled 0.5 s x 1.5)."
        ),
        look_for=["host-a-eth0: SYN -> RST,ACK pairs, spaced 0.5, 0.75, 1.1 ... s."],
        record=record_refused, evidence=evidence_refused, facts=facts_refused,
    ),
    Scenario(
        name="fragments-dropped", short="fd", root_cause="fragments-dropped",
        description=(
            "The router drops IPv4 fragments. Fast datapath and sleeve heartbeats work, but host-a's 60001-byte "
            "fragmentation test (sent twice) never reassembles at host-b: no fragment reaches it and no frag-test "
            "ack (07 01 02) comes back."
        ),
        look_for=[
            "host-a-eth0 / router-left: two trains of 41 fragments (UDP 6783, IP id per train).",
            "router-right / host-b-eth0: no fragments; heartbeats both ways fine.",
        ],
        record=record_frags_dropped, evidence=evidence_frags_dropped, facts=facts_frags_dropped,
    ),
    Scenario(
        name="ipv6-ptb", short="v6", root_cause="fastdp-heartbeat-exceeds-path-mtu",
        description=(
            "The P2 fault on an IPv6 underlay: VXLAN over IPv6 makes each fastdp heartbeat an IPv6 packet of 1480 "
            "bytes (1494-byte frame); host-b's link is 1454, so the router answers with ICMPv6 packet too big (MTU "
            "1454) instead of ICMP 3/4 and fastdp never comes up; sleeve works."
        ),
        look_for=[
            "host-a-eth0: 1494-byte UDP 6784 frames over IPv6, ICMPv6 type 2 from fd00:1::1 with MTU 1454.",
            "Sleeve over IPv6: heartbeats, verification frames (outer IPv6 packet = PMTU under test).",
        ],
        record=record_ipv6, evidence=evidence_ipv6, facts=facts_ipv6,
    ),
    Scenario(
        name="flannel-8472-mtu", short="fl", root_cause="no-weave-traffic",
        description=(
            "Not Weave: a flannel-style kernel VXLAN overlay (UDP 8472, VNI 1, overlay MTU 1450) behind the same "
            "1454-byte hop. 1450-byte DF pings become 1500-byte outer packets and the router answers ICMP 3/4 MTU "
            "1454. weavepcap must not call this a Weave fault: there is no Weave traffic at all."
        ),
        look_for=["UDP 8472 VXLAN (overlay.vxlan), ICMP 3/4 quoting it; nothing on 6783/6784."],
        record=record_flannel, evidence=evidence_flannel, facts=facts_flannel,
    ),
    Scenario(
        name="no-overlay", short="no", root_cause="no-weave-traffic",
        description="Ordinary traffic only between two routed hosts: pings, one small TCP exchange, DNS-like UDP.",
        look_for=["ICMP echo, TCP 8080, UDP 53, ARP; no overlay at all."],
        record=record_no_overlay, evidence=evidence_no_overlay, facts=facts_no_overlay,
    ),
    Scenario(
        name="xss-nickname", short="xss", root_cause="healthy",
        description=(
            "A healthy fastdp link whose control handshake carries hostile strings: host-a's NickName is "
            f"`{XSS_NICKNAME}` and its Name `{XSS_PEER_NAME}`. Any HTML report must show them escaped, never run them."
        ),
        look_for=["host-a's features map in TCP 6783 (search the payload for NickName)."],
        record=record_xss, evidence=evidence_xss, facts=facts_xss,
    ),
    Scenario(
        name="esp-blocked", short="esp", root_cause="esp-blocked",
        description=(
            "Encrypted fast datapath whose ESP never arrives: the router drops IP protocol 50 (as GCP's firewall "
            "does by default). Both hosts send their VXLAN heartbeats (overlay MTU 1376) as ESP in transport mode, "
            "IP 1460 with DF; they reach the router and go no further, with no ICMP, so no fastdp ack ever comes "
            "back. The control connection (encrypted handshake) and sleeve work; sleeve verifies 1438 and carries "
            "the data."
        ),
        look_for=[
            "host-a-eth0 / router-left: IP protocol 50 from 10.0.1.2 (SPI 0x1a2b3c4d) every 0.5 s; router-right and "
            "host-b-eth0 never show it (and the same for host-b's SPI 0xc0ffee5 the other way).",
            "TCP 6783: `weave 01 02`, flag 01 + 32 random-looking bytes, then length-prefixed opaque bodies "
            "(heartbeat body 17 bytes, acks 19 and 21).",
            "Sleeve (unencrypted here): heartbeats, fragmentation test, PMTU verification at 1500 acked.",
        ],
        record=record_esp_blocked, evidence=evidence_esp_blocked, facts=facts_esp_blocked,
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


# The order of issue 3 (numbers in the samples README); SCENARIOS starts with the demo instead.
ISSUE_ORDER = ("healthy-fastdp", "p2-router", "p2-local-mtu", "mtu-blackhole", "p1-tx-stall", "fastdp-port-blocked",
               "sleeve-port-blocked", "control-refused", "fragments-dropped", "ipv6-ptb", "flannel-8472-mtu",
               "no-overlay", "xss-nickname", "esp-blocked")


def write_index(out_root: Path) -> None:
    """Rewrite the scenario table in <out_root>/README.md from the expected.json files."""
    readme = out_root / "README.md"
    start, end = "<!-- scenario-table -->", "<!-- /scenario-table -->"
    if not readme.is_file() or start not in readme.read_text():
        return
    rows = ["| # | scenario | root cause | what | captures, frames |", "|---|---|---|---|---|"]
    by_name = {sc.name: sc for sc in SCENARIOS}
    for i, name in enumerate(ISSUE_ORDER, start=1):
        sc = by_name[name]
        exp_path = out_root / sc.name / "expected.json"
        if not exp_path.is_file():
            continue
        doc = json.loads(exp_path.read_text())
        frames = sum(c["frames"] for c in doc["captures"].values())
        summary = sc.description.split(". ")[0].rstrip(".") + "."
        rows.append(f"| {i} | [`{sc.name}`]({sc.name}/README.md) | `{sc.root_cause}` | {summary} | "
                    f"{len(doc['captures'])}, {frames} |")
    text = readme.read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + tail)


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
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        parser.error("the lab needs root on Linux (network namespaces, tcpdump, nftables)")
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
    write_index(args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
