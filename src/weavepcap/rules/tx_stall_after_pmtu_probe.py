"""Rule: a host sends the fragmentation test / a large UDP probe and then transmits nothing, while peers keep sending."""

from __future__ import annotations

import pandas as pd

from weavepcap.detect.base import make_events, text
from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.wire import IPV4_HDR

PROBE_WINDOW_NS = 10_000_000_000  # the probe must come shortly before the host fell silent
LARGE_UDP = 1400  # an IP length a probe of the path MTU reaches
PROBE_CLASSES = ("weave.sleeve.fragtest", "weave.sleeve.pmtu_discovery", "weave.sleeve.pmtu_verify")


def check(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    stops = ctx.of("host.tx_stopped")
    for _, stop in stops.iterrows():
        host = str(stop["attrs"].get("host") or stop["host"])  # the silent host (the capture may be a peer's)
        t_last = int(stop["t_ns"])
        pk = ctx.packets
        mine = pk[(text(pk["src_host"]) == host) & (pk["t_ns"].to_numpy() <= t_last)
                  & (pk["t_ns"].to_numpy() >= t_last - PROBE_WINDOW_NS)]
        klass = text(mine["klass"])
        probe_mask = (
            (klass == "weave.sleeve.fragtest") | (klass == "weave.sleeve.pmtu_discovery") | (klass == "weave.sleeve.pmtu_verify")
            | ((mine["ip_proto"].to_numpy() == 17) & (mine["ip_len"].to_numpy() >= LARGE_UDP))
        )
        if not probe_mask.any():
            continue
        ev = ctx.events
        probe_ev = ev[ev["event"].isin(("fragments.sent", "sleeve.pmtu_probe")) & (ev["src_host"] == host)
                      & (ev["t_ns"] <= t_last) & (ev["t_ns"] >= t_last - PROBE_WINDOW_NS)]
        retrans = ev[(ev["event"] == "tcp.retransmission") & (ev["dst_host"] == host) & (ev["t_ns"] > t_last)]
        attrs = stop["attrs"]
        probes = mine[probe_mask]
        named = sorted(set(klass[probe_mask]) & set(PROBE_CLASSES))
        kinds = named or ["large UDP"]
        facts: dict[str, object] = {
            "host": host,
            "tx_stalled_host": host,
            "last_frame": int(stop["frame"]),
            "last_capture": stop["capture"],
            "probe_kinds": kinds,
            "probe_ip_len": int(probes["ip_len"].max()),
            "frames_after": attrs.get("frames_after"),
            "seconds_after": attrs.get("seconds_after"),
            "retransmissions_after": attrs.get("retransmissions_after"),
        }
        described = _describe_probes(probes)
        facts.update(described)
        what = (f"a {described['probe_datagram_len']}-byte IP datagram sent as {described['probe_fragments']} "
                f"fragments of IP length up to {facts['probe_ip_len']}" if described else
                f"probes of IP length up to {facts['probe_ip_len']}")
        msg = (f"{host} sent a path-MTU/fragmentation probe ({', '.join(kinds)}: {what}) "
               f"and then transmitted nothing more, while its peers sent "
               f"{facts['frames_after']} frames to it over {facts['seconds_after']} s "
               f"({facts['retransmissions_after']} TCP retransmissions): its NIC stopped transmitting.")
        conf = 0.9 if (attrs.get("retransmissions_after") or 0) > 0 else 0.75
        if not attrs.get("own_capture", True):
            conf -= 0.25  # seen only from the peers: the way back could be cut instead
            msg += f" Seen only from its peers' captures; capture on {host} to tell a stalled NIC from a cut path."
        # What kept arriving at the silent host: ARP requests it never answered, heartbeats.
        own = text(pk["host"]) == host
        later = pk[own & (pk["t_ns"].to_numpy() > t_last) & (text(pk["dir"]) != "tx")]  # empty without its capture
        arp = later[text(later["klass"]) == "arp"].iloc[:1]
        arp_ev = make_events(arp, "host.tx_stopped", f"ARP to {host} after it went quiet (never answered)", "arp")
        hb_in = ev[ev["event"].isin(("fastdp.heartbeat_received", "sleeve.heartbeat_received")) & (ev["host"] == host)
                   & (ev["t_ns"] > t_last)]
        findings.append(ctx.finding(RULE, confidence=conf, message=msg, facts=facts,
                                    evidence=[probe_ev.iloc[:1], stops[[str(a.get("host")) == host for a in stops["attrs"]]], retrans.iloc[:3],
                                              arp_ev, hb_in.iloc[:2], probe_ev.iloc[1:]],
                                    hosts=[host], path=None))
    return findings


def _describe_probes(probes: pd.DataFrame) -> dict[str, object]:
    """The largest fragmented probe as a reviewer counts it: the whole datagram's IP length and its fragments."""
    frag = probes[(probes["ip_mf"].to_numpy(dtype=bool)) | (probes["ip_frag_off"].to_numpy() > 0)]
    if frag.empty or "frag_train" not in frag:
        return {}
    ends = frag["ip_frag_off"].to_numpy() + frag["ip_len"].to_numpy() - IPV4_HDR  # payload end of each fragment
    # A train is named by its first frame number within one capture.
    per_train = pd.DataFrame({"capture": text(frag["capture"]), "train": frag["frag_train"].to_numpy(), "end": ends})
    sizes = per_train.groupby(["capture", "train"])["end"].agg(["max", "size"])
    biggest = sizes.loc[sizes["max"].idxmax()]
    return {"probe_datagram_len": int(biggest["max"]) + IPV4_HDR, "probe_fragments": int(biggest["size"])}


RULE = Rule(
    id="tx-stall-after-pmtu-probe",
    title="Host stops transmitting after the fragmentation test / PMTU probe",
    kind=FAULT,
    needs=("host.tx_stopped", "fragments.sent", "sleeve.pmtu_probe", "tcp.retransmission", "fastdp.heartbeat_received",
           "sleeve.heartbeat_received"),
    facts=(
        "host", "tx_stalled_host", "last_frame", "last_capture", "probe_kinds", "probe_ip_len",
        "probe_datagram_len", "probe_fragments", "frames_after", "seconds_after",
        "retransmissions_after",
    ),
    fix=("{host} stopped transmitting right after Weave's large UDP fragmentation/PMTU probe: the virtio_net "
         "UDP fragmentation offload (UFO) bug in old kernels wedges the NIC's transmit queue on such a packet. "
         "Upgrade the kernel to >= 3.13 (CentOS/RHEL 7.1: 3.10.0-229 or later), or turn UFO off on the underlay "
         "device: `ethtool -K <dev> ufo off`."),
    not_found="no host went quiet after a fragmentation test or large UDP probe while its peers kept sending",
    check=check,
)
