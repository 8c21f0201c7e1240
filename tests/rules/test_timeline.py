"""Hosts, addresses, clock offsets and the merged timeline on hand-made captures."""

from __future__ import annotations

import pytest
from rulekit import ADDR, Scene, healthy_scene, sleeve_hb

from weavepcap.detect import EVENTS


def shifted_scene(offset_s: float) -> Scene:
    s = healthy_scene()
    shifted = Scene(offsets_s={"host-b": offset_s})
    shifted.handshake(0.0)
    for t in range(4):
        for a, b in (("host-a", "host-b"), ("host-b", "host-a")):
            shifted.send(a, b, t + 0.1, sleeve_hb(), latency_s=0.0004)
    shifted.ack("host-b", "host-a", 0.15, 0, 1)
    shifted.ack("host-a", "host-b", 0.16, 0, 1)
    assert s.rows  # the unshifted scene builds too
    return shifted


@pytest.mark.parametrize("offset", [2.5, -7.25, 0.0])
def test_clock_offset_is_estimated_with_uncertainty(offset: float) -> None:
    a = shifted_scene(offset).analyze()
    b = a.hosts["host-b"]
    assert b.clock_source == "estimated"
    assert b.clock_matches > 0
    assert b.clock_offset_uncertainty_s is not None and b.clock_offset_uncertainty_s < 0.001
    assert abs(b.clock_offset_s - offset) <= b.clock_offset_uncertainty_s + 1e-6
    assert a.hosts["host-a"].clock_reference
    # Aligned: every packet received at host-b sits just after its sending at host-a.
    ev = a.events
    sent = ev[(ev["event"] == "sleeve.heartbeat_sent") & (ev["host"] == "host-a")]["t_ns"].to_numpy()
    got = ev[(ev["event"] == "sleeve.heartbeat_received") & (ev["host"] == "host-b")]["t_ns"].to_numpy()
    assert len(sent) == len(got) == 4
    assert ((got - sent) > 0).all() and ((got - sent) < 2_000_000).all()


def test_forced_clock_offset_wins() -> None:
    a = shifted_scene(2.5).analyze(clock_offsets={"host-b": 1.0})
    assert a.hosts["host-b"].clock_offset_s == 1.0
    assert a.hosts["host-b"].clock_source == "forced"


def test_no_shared_packet_means_unknown_offset_and_a_caveat() -> None:
    s = Scene()
    s.send("host-a", "host-b", 0.0, sleeve_hb(), delivered=False)
    s.send("host-b", "host-a", 0.0, sleeve_hb(), delivered=False)
    a = s.analyze()
    assert a.hosts["host-b"].clock_source == "unknown"
    assert any("clock offset of host-b unknown" in c for c in a.caveats)


def test_addresses_go_to_the_host_that_sends_them_not_the_receiver() -> None:
    a = healthy_scene().analyze()
    assert a.hosts["host-a"].addresses == [ADDR["host-a"]]
    assert a.hosts["host-b"].addresses == [ADDR["host-b"]]
    tx = a.packets[a.packets["dir"] == "tx"]
    assert set(zip(tx["host"], tx["ip_src"], strict=True)) == {("host-a", ADDR["host-a"]), ("host-b", ADDR["host-b"])}


def test_uncaptured_peer_becomes_a_host_named_by_its_nickname() -> None:
    a = healthy_scene(captured=("host-a",)).analyze()
    assert "host-b" in a.hosts and not a.hosts["host-b"].captures
    assert a.hosts["host-b"].addresses == [ADDR["host-b"]]
    assert any("one-sided" in c for c in a.caveats) or a.verdict.root_cause == "healthy"


def test_every_event_is_declared_and_sorted() -> None:
    a = healthy_scene().analyze()
    assert set(a.events["event"]) <= set(EVENTS)
    assert a.events["t_ns"].is_monotonic_increasing
    assert all(f.startswith("frame.number == ") for f in a.events["filter"])


def test_a_router_capture_does_not_steal_the_hosts_addresses() -> None:
    from rulekit import frame_of

    from weavepcap.api import CaptureInput
    from weavepcap.model import CaptureRecord

    s = healthy_scene()
    inputs = s.inputs()
    # The router's two interfaces see the very frames each host's own capture shows.
    for i, host in enumerate(("host-a", "host-b")):
        rows = sorted(s.rows[host], key=lambda r: r["ts_ns"])
        name = f"gw-side{i}.pcap"
        frame = frame_of(rows, name, "gw")
        inputs.append(CaptureInput(CaptureRecord(name, name, "gw", len(frame), 0, int(frame["ts_ns"].min()),
                                                 int(frame["ts_ns"].max()), ["ETHERNET"], {}, []), frame))
    from weavepcap.api import analyze_inputs

    a = analyze_inputs(inputs)
    assert a.hosts["host-a"].addresses == [ADDR["host-a"]]
    assert a.hosts["host-b"].addresses == [ADDR["host-b"]]
    assert a.hosts["gw"].addresses == []
