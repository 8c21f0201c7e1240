"""Status: nothing of Weave in the captures; say what overlay (or other) traffic there is instead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.classes import WEAVE_CLASSES
from weavepcap.detect.base import make_events, row_filters, text
from weavepcap.model import Finding
from weavepcap.rules.base import STATUS, Context, Rule
from weavepcap.wire import OVERLAY_FAMILY

OTHER_OVERLAYS = {"overlay.vxlan": "VXLAN (not Weave's port)", "overlay.geneve": "Geneve"}
TRAFFIC_EXAMPLES = 5  # first frames of distinct kinds of traffic, cited as "what there is instead"


def _kinds(rows: pd.DataFrame) -> np.ndarray:
    """A short name per frame: `icmp 8`, `tcp 8080`, `udp 53`, or the class."""
    proto = rows["ip_proto"].to_numpy()
    port = np.minimum(np.where(rows["sport"].to_numpy() > 0, rows["sport"].to_numpy(), 1 << 16),
                      np.where(rows["dport"].to_numpy() > 0, rows["dport"].to_numpy(), 1 << 16))
    name = np.where(proto == 6, "tcp", np.where(proto == 17, "udp", np.where(np.isin(proto, (1, 58)), "icmp", "")))
    detail = np.where(np.isin(proto, (1, 58)), rows["icmp_type"].to_numpy(), port).astype(str)
    return np.where(name != "", np.char.add(np.char.add(name.astype(str), " "), detail), text(rows["klass"]))


def check(ctx: Context) -> list[Finding]:
    weave = sum(ctx.class_frames(k) for k in WEAVE_CLASSES)
    if weave:
        return []
    others = {name: ctx.class_frames(k) for k, name in OTHER_OVERLAYS.items() if ctx.class_frames(k)}
    frames = sum(c.frames for c in ctx.captures)
    pk = ctx.packets
    facts: dict[str, object] = {"weave_frames": 0, "frames": frames, "other_overlays": others}
    evidence: list[pd.DataFrame] = []
    msg = f"No Weave traffic in {frames} frames"
    if not pk.empty:
        klass = text(pk["klass"])
        ov = pk[np.isin(klass, list(OTHER_OVERLAYS))]
        if not ov.empty:
            ports = sorted({int(p) for p in ov["dport"].unique() if int(p) > 0})
            first = ov.iloc[0]
            facts.update(overlay_ports=ports, vxlan_port=int(first["dport"]), vni=int(first["vxlan_vni"]),
                         outer_ip_len=int(ov["ip_len"].max()))
            evidence.append(make_events(ov.iloc[:1], "overlay", f"{first['klass']} on UDP {int(first['dport'])}, VNI "
                                        f"{int(first['vxlan_vni'])} (not Weave)", f"udp.port == {int(first['dport'])}"))
            msg += "; instead: " + ", ".join(f"{n} frames of {name}" for name, n in others.items())
            msg += f" on UDP port(s) {', '.join(map(str, ports))}"
        icmp = ctx.of("icmp.frag_needed")
        if not icmp.empty:
            mtus = sorted({int(a["mtu"]) for a in icmp["attrs"]})
            quoted = max(int(a["quoted_ip_len"]) for a in icmp["attrs"])
            facts.update(icmp_frag_needed=len(icmp), icmp_mtus=mtus, path_mtu=min(mtus))
            if not ov.empty:
                facts["overlay_mtu"] = max(int(facts.get("outer_ip_len", 0)), quoted) - OVERLAY_FAMILY["vxlan"].overhead_v4
                facts["outer_ip_len"] = max(int(facts.get("outer_ip_len", 0)), quoted)
            msg += f". ICMP too-big seen (MTU {', '.join(map(str, mtus))}) for {quoted}-byte packets"
            msg += ": that overlay has an MTU problem of its own" if not ov.empty else ""
            evidence.append(icmp.iloc[:2])
        if ov.empty:
            plain = pk[(text(pk["dir"]) == "tx") & (klass == "other")] if "dir" in pk else pk.iloc[:0]
            if not plain.empty:
                kinds = _kinds(plain)
                firsts = plain[~pd.Series(kinds).duplicated().to_numpy()].iloc[:TRAFFIC_EXAMPLES]
                names = _kinds(firsts)
                evidence.append(make_events(firsts, "traffic", [f"{k} traffic, not Weave" for k in names],
                                            row_filters(firsts, ctx.settings)))
                msg += f"; traffic seen: {', '.join(dict.fromkeys(names))}"
    return [ctx.finding(RULE, confidence=0.9, message=msg + ".", facts=facts, evidence=evidence, hosts=[], path=None)]


RULE = Rule(
    id="no-weave-traffic",
    title="No Weave traffic in the captures",
    kind=STATUS,
    needs=("icmp.frag_needed",),
    facts=(
        "weave_frames", "frames", "other_overlays", "overlay_ports", "vxlan_port", "vni", "outer_ip_len",
        "icmp_frag_needed", "icmp_mtus", "path_mtu", "overlay_mtu",
    ),
    fix=("Capture on the hosts' underlay interfaces while Weave runs (TCP/UDP {weave_port}, UDP {fastdp_port}, ESP), or analyse the "
         "overlay you have with a tool for it."),
    not_found="Weave traffic is present",
    check=check,
)
