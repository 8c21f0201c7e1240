"""Each rule fires on its fault and stays quiet on a near miss (hand-made packet tables, no samples needed)."""

from __future__ import annotations

import pytest
from rulekit import (
    ADDR,
    Scene,
    esp,
    fastdp_hb,
    healthy_scene,
    pmtu_verify,
    sleeve_data,
    sleeve_hb,
    tcp,
)

from weavepcap.api import Analysis
from weavepcap.rules import RULES


def fired(analysis: Analysis) -> dict[str, float]:
    return {f.rule: f.confidence for f in analysis.findings}


def base(seconds: int = 4, *, fastdp: bool = True, fastdp_ok: bool = True, hb_len: int = 1426,
         sleeve_ok: bool = True, captured: tuple[str, ...] = ("host-a", "host-b")) -> Scene:
    """A connected pair; fastdp / sleeve heartbeats delivered and acked or not, as asked."""
    s = Scene(captured=captured)
    s.handshake(0.0)
    for t in range(seconds):
        for a, b in (("host-a", "host-b"), ("host-b", "host-a")):
            s.send(a, b, t + 0.1, sleeve_hb(), delivered=sleeve_ok)
            if fastdp:
                s.send(a, b, t + 0.2, fastdp_hb(hb_len), delivered=fastdp_ok)
            if sleeve_ok and not (fastdp and fastdp_ok):
                s.send(a, b, t + 0.3, sleeve_data())
    for a, b in (("host-a", "host-b"), ("host-b", "host-a")):
        if sleeve_ok:
            s.ack(b, a, 0.15, 1 if fastdp else 0, 1)
        if fastdp and fastdp_ok:
            s.ack(b, a, 0.25, 0, 0)
    return s


def quote(hb_len: int, ip_id: int) -> dict[str, object]:
    return {"q_ip_version": 4, "q_ip_src": ADDR["host-a"], "q_ip_dst": ADDR["host-b"], "q_ip_len": hb_len,
            "q_ip_id": ip_id, "q_ip_df": True, "q_ip_proto": 17, "q_sport": 41000, "q_dport": 6784,
            "q_inner_zero_eth": True}


def p2_router_scene() -> Scene:
    s = base(fastdp_ok=False, hb_len=1460)
    hb_id = next(r["ip_id"] for r in s.rows["host-a"] if r.get("klass") == "weave.fastdp.heartbeat")
    s.icmp_from_router("host-a", 0.2006, 1454, quote(1460, hb_id))
    return s


# --- fastdp-heartbeat-exceeds-path-mtu -------------------------------------------------------------


def test_fastdp_heartbeat_exceeds_path_mtu_fires_on_router_icmp() -> None:
    a = p2_router_scene().analyze()
    assert a.verdict.root_cause == "fastdp-heartbeat-exceeds-path-mtu"
    f = a.findings[0]
    assert f.facts["path_mtu"] == 1454
    assert f.facts["heartbeat_ip_len"] == 1460
    assert f.facts["heartbeat_frame_len"] == 1474
    assert f.facts["overlay_mtu"] == 1410
    assert f.facts["max_overlay_mtu"] == 1404
    assert f.facts["max_overlay_mtu_encrypted"] == 1368
    assert "esp-blocked" not in fired(a)  # too big, not blocked
    assert "1404" in f.fix and "1454" in f.fix
    assert f.evidence[0].capture == "host-a-eth0.pcap"
    assert "icmp.type == 3" in f.evidence[0].filter
    assert a.verdict.path == "host-a -> host-b"


def test_fastdp_heartbeat_exceeds_path_mtu_fires_without_icmp_when_path_proven_smaller() -> None:
    s = base(fastdp_ok=False, hb_len=1460)
    s.ack("host-b", "host-a", 2.0, 1, 3, pmtu=1392)  # sleeve verified 1392 → 1454 got through
    a = s.analyze()
    assert "fastdp-heartbeat-exceeds-path-mtu" in fired(a)
    f = next(f for f in a.findings if f.rule == "fastdp-heartbeat-exceeds-path-mtu")
    assert f.facts["path_mtu_low"] == 1454
    assert f.facts["max_overlay_mtu"] == 1404


def test_fastdp_heartbeat_exceeds_path_mtu_fires_for_encrypted_fastdp() -> None:
    s = base(fastdp=False)
    for k in range(3):
        s.send("host-a", "host-b", 0.5 + k * 0.5, esp(1460), delivered=False)
    esp_id = next(r["ip_id"] for r in s.rows["host-a"] if r.get("klass") == "weave.fastdp.esp")
    s.icmp_from_router("host-a", 0.501, 1454, {**quote(1460, esp_id), "q_ip_proto": 50, "q_sport": -1, "q_dport": -1,
                                               "q_inner_zero_eth": False})
    a = s.analyze()
    assert a.verdict.root_cause == "fastdp-heartbeat-exceeds-path-mtu"
    f = a.findings[0]
    assert f.facts["encrypted"] is True
    assert f.facts["overlay_mtu"] == 1376  # the default since 1.9: 52 + roundup4(1376 + 32) = 1460
    assert f.facts["max_overlay_mtu_encrypted"] == 1368
    assert "esp-blocked" not in fired(a)  # too big, not blocked


def test_fastdp_heartbeat_exceeds_path_mtu_quiet_when_icmp_mtu_is_not_smaller() -> None:
    s = base()
    hb_id = next(r["ip_id"] for r in s.rows["host-a"] if r.get("klass") == "weave.fastdp.heartbeat")
    s.icmp_from_router("host-a", 0.3, 1500, quote(1426, hb_id))
    assert "fastdp-heartbeat-exceeds-path-mtu" not in fired(s.analyze())


# --- pmtu-blackhole ---------------------------------------------------------------------------------


def blackhole_scene(with_icmp: bool = False) -> Scene:
    s = base(fastdp_ok=False, hb_len=1460)
    for i, size in enumerate((1500, 1500, 1500, 1057, 1278, 1389, 1444)):
        s.send("host-a", "host-b", 1.0 + i * 0.1, pmtu_verify(size), delivered=size <= 1454)
    if with_icmp:
        s.icmp_from_router("host-a", 1.01, 1454, {"q_ip_version": 4, "q_ip_src": ADDR["host-a"],
                                                  "q_ip_dst": ADDR["host-b"], "q_ip_len": 1500, "q_ip_proto": 17,
                                                  "q_sport": 6783, "q_dport": 6783})
    return s


def test_pmtu_blackhole_fires_when_large_df_packets_vanish_without_icmp() -> None:
    a = blackhole_scene().analyze()
    assert a.verdict.root_cause == "pmtu-blackhole"
    f = a.findings[0]
    assert f.facts["smallest_lost_ip_len"] == 1460
    assert f.facts["largest_delivered_ip_len"] == 1444
    assert "weave.sleeve.pmtu_verify" in f.facts["lost_classes"]


def test_pmtu_blackhole_fires_one_sided_when_probes_above_the_verified_mtu_go_unanswered() -> None:
    s = Scene(captured=("host-a",))
    s.handshake(0.0)
    for i, size in enumerate((1500, 1500, 1057, 1278, 1389, 1444, 1472, 1458, 1451, 1454, 1456, 1455)):
        s.send("host-a", "host-b", 1.0 + i * 0.1, pmtu_verify(size))
    for k, mtu in enumerate((995, 1216, 1327, 1382, 1389, 1392)):
        s.ack("host-b", "host-a", 1.05 + k * 0.2, 0, 3, pmtu=mtu)
    a = s.analyze()
    assert a.verdict.root_cause == "pmtu-blackhole"
    assert a.findings[0].facts["path_mtu"] == 1454
    assert a.findings[0].facts["smallest_lost_ip_len"] == 1455


def test_pmtu_blackhole_quiet_when_icmp_was_sent() -> None:
    assert "pmtu-blackhole" not in fired(blackhole_scene(with_icmp=True).analyze())


def test_pmtu_blackhole_quiet_on_healthy() -> None:
    assert "pmtu-blackhole" not in fired(healthy_scene().analyze())


# --- tx-stall-after-pmtu-probe ---------------------------------------------------------------------


def stall_scene(probe: bool = True) -> Scene:
    s = base(seconds=2, fastdp=False)
    if probe:
        for k in range(3):  # the fragmentation test: 3 fragments of one datagram, sent, then silence
            s.send("host-a", "host-b", 2.0 + k * 0.0001,
                   {"ip_proto": 17, "sport": 6783 if k == 0 else -1, "dport": 6783 if k == 0 else -1, "ip_df": False,
                    "ip_mf": k < 2, "ip_frag_off": k * 1480, "ip_len": 1500, "klass": "weave.sleeve.fragtest",
                    "ip_id": 777, "reasm_status": "complete"})
    else:
        s.send("host-a", "host-b", 2.0, sleeve_hb())
    # host-b keeps talking: heartbeats and the same TCP segment again and again.
    sp, dp = s.ports["host-b"]
    for k in range(5):
        s.send("host-b", "host-a", 2.5 + k * 0.6, sleeve_hb())
        s.send("host-b", "host-a", 2.6 + k * 0.6, tcp(sp, dp, 0x18, s.seq["host-b"], 5))
    return s


def test_tx_stall_after_pmtu_probe_fires() -> None:
    a = stall_scene().analyze()
    assert a.verdict.root_cause == "tx-stall-after-pmtu-probe"
    f = a.findings[0]
    assert f.facts["host"] == "host-a"
    assert f.facts["retransmissions_after"] >= 3
    assert "ufo off" in f.fix and "3.13" in f.fix
    assert any(e.capture == "host-a-eth0.pcap" for e in f.evidence)


def test_tx_stall_after_pmtu_probe_fires_from_the_peers_capture_alone() -> None:
    s = stall_scene()
    s.captured = ("host-b",)
    s.rows.pop("host-a")
    a = s.analyze()
    assert a.verdict.root_cause == "tx-stall-after-pmtu-probe"
    assert a.findings[0].facts["host"] == "host-a"
    assert a.findings[0].confidence < 0.9  # weaker without host-a's own capture


def test_tx_stall_after_pmtu_probe_quiet_without_a_probe_before_the_silence() -> None:
    assert "tx-stall-after-pmtu-probe" not in fired(stall_scene(probe=False).analyze())


def test_tx_stall_after_pmtu_probe_quiet_on_healthy() -> None:
    assert "tx-stall-after-pmtu-probe" not in fired(healthy_scene().analyze())


# --- fastdp-port-blocked ---------------------------------------------------------------------------


def test_fastdp_port_blocked_fires_when_heartbeats_fit_but_never_arrive() -> None:
    s = base(fastdp_ok=False, hb_len=1426)
    s.send("host-a", "host-b", 1.5, pmtu_verify(1500))  # the path carries 1500 bytes
    a = s.analyze()
    assert a.verdict.root_cause == "fastdp-port-blocked"
    assert a.findings[0].facts["sleeve_working"] is True


def test_fastdp_port_blocked_quiet_when_heartbeats_are_too_big() -> None:
    assert "fastdp-port-blocked" not in fired(p2_router_scene().analyze())


def test_fastdp_port_blocked_quiet_on_healthy() -> None:
    assert "fastdp-port-blocked" not in fired(healthy_scene().analyze())


# --- sleeve-port-blocked ---------------------------------------------------------------------------


def test_sleeve_port_blocked_fires() -> None:
    s = base(fastdp=False, sleeve_ok=False)
    s.close(4.5)
    s.handshake(5.0)
    a = s.analyze()
    assert a.verdict.root_cause == "sleeve-port-blocked"
    assert a.findings[0].facts["heartbeats_received"] == 0


def test_sleeve_port_blocked_quiet_on_healthy() -> None:
    assert "sleeve-port-blocked" not in fired(healthy_scene().analyze())


# --- esp-blocked -----------------------------------------------------------------------------------


def esp_scene(delivered: bool) -> Scene:
    s = base(fastdp=False)
    for k in range(5):
        s.send("host-a", "host-b", 0.5 + k * 0.5, esp(), delivered=delivered)
        s.send("host-b", "host-a", 0.6 + k * 0.5, esp(), delivered=delivered)
    return s


def test_esp_blocked_fires() -> None:
    a = esp_scene(delivered=False).analyze()
    assert "esp-blocked" in fired(a)
    assert a.verdict.root_cause == "esp-blocked"


def test_esp_blocked_quiet_when_esp_arrives() -> None:
    assert "esp-blocked" not in fired(esp_scene(delivered=True).analyze())


# --- control-connection-refused --------------------------------------------------------------------


def test_control_connection_refused_fires_on_syn_answered_by_rst() -> None:
    s = Scene()
    for k in range(3):
        s.send("host-a", "host-b", k * 2.0, tcp(46000 + k, 6783, 0x02, 10))
        s.send("host-b", "host-a", k * 2.0 + 0.001, tcp(6783, 46000 + k, 0x14, 0))
    a = s.analyze()
    assert a.verdict.root_cause == "control-connection-refused"
    assert a.findings[0].facts["refused"] >= 3  # seen in both captures


def test_control_connection_refused_quiet_on_rst_after_a_session() -> None:
    a = healthy_scene().analyze()  # ends with Weave's normal RST close
    assert not a.events[a.events["event"] == "tcp.reset"].empty
    assert "control-connection-refused" not in fired(a)


# --- fragments-dropped -----------------------------------------------------------------------------


def frag_scene(delivered: bool) -> Scene:
    s = base(fastdp=False)
    for k in range(3):
        s.send("host-a", "host-b", 1.0 + k * 0.0001,
               {"ip_proto": 17, "sport": 6783 if k == 0 else -1, "dport": 6783 if k == 0 else -1, "ip_df": False,
                "ip_mf": k < 2, "ip_frag_off": k * 1480, "ip_len": 1500, "klass": "weave.sleeve.fragtest",
                "ip_id": 4242, "reasm_status": "complete"}, delivered=delivered)
    return s


def test_fragments_dropped_fires() -> None:
    a = frag_scene(delivered=False).analyze()
    assert a.verdict.root_cause == "fragments-dropped"
    assert a.findings[0].facts["trains_lost"] == 1


def test_fragments_dropped_quiet_when_trains_complete() -> None:
    assert "fragments-dropped" not in fired(frag_scene(delivered=True).analyze())


# --- peer-silent -----------------------------------------------------------------------------------


def test_peer_silent_fires_when_a_host_never_sends() -> None:
    s = Scene()
    for k in range(5):
        s.send("host-a", "host-b", k * 0.5, sleeve_hb())
        s.send("host-a", "host-b", k * 0.5 + 0.1, fastdp_hb(1426))
    a = s.analyze()
    assert a.verdict.root_cause == "peer-silent"
    assert a.hosts["host-b"].addresses == [ADDR["host-b"]]  # the address it is sent to
    assert a.findings[0].confidence >= 0.8  # its own capture proves it sends nothing


def test_peer_silent_quiet_on_healthy() -> None:
    assert "peer-silent" not in fired(healthy_scene().analyze())


# --- status rules ----------------------------------------------------------------------------------


def test_healthy_fires_on_working_overlay() -> None:
    a = healthy_scene().analyze()
    assert a.verdict.root_cause == "healthy"
    assert a.verdict.is_fault is False
    assert not a.caveats


def test_healthy_quiet_on_a_fault() -> None:
    assert "healthy" not in fired(p2_router_scene().analyze())


def test_no_weave_traffic_fires_and_names_the_other_overlay() -> None:
    s = Scene()
    for k in range(4):
        s.send("host-a", "host-b", k * 0.1, {"ip_proto": 17, "sport": 40000, "dport": 8472, "ip_len": 150,
                                             "klass": "overlay.vxlan", "tun_type": 1})
    a = s.analyze()
    assert a.verdict.root_cause == "no-weave-traffic"
    assert a.findings[0].facts["overlay_ports"] == [8472]
    assert "VXLAN" in a.verdict.headline


def test_no_weave_traffic_quiet_on_weave() -> None:
    assert "no-weave-traffic" not in fired(healthy_scene().analyze())


def test_undetermined_fires_when_only_control_traffic_is_seen() -> None:
    s = Scene(captured=("host-a",))
    s.handshake(0.0)
    a = s.analyze()
    assert a.verdict.root_cause == "undetermined"
    assert "host-b" in a.verdict.headline  # says which capture is missing


def test_undetermined_quiet_when_something_decides() -> None:
    assert "undetermined" not in fired(healthy_scene().analyze())


# --- the registry ----------------------------------------------------------------------------------


def test_every_rule_has_a_firing_and_a_quiet_test() -> None:
    names = set(globals())
    for rule in RULES:
        stem = rule.id.replace("-", "_")
        assert any(n.startswith(f"test_{stem}_fires") for n in names), rule.id
        assert any(n.startswith(f"test_{stem}_quiet") for n in names), rule.id


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_declares_what_it_needs(rule) -> None:  # noqa: ANN001
    from weavepcap.detect import EVENTS

    assert rule.title and rule.not_found
    assert set(rule.needs) <= set(EVENTS)
    assert rule.id == rule.id.lower() and " " not in rule.id
