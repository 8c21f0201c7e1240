"""A generated chunk of mixed Weave traffic (a weighted mix of frame templates), for decode tests and benches."""

from __future__ import annotations

import numpy as np

from support.build import (
    control_message,
    ethernet,
    fastdp_heartbeat_frame,
    frag_needed,
    icmp,
    ipv4,
    sleeve,
    sleeve_heartbeat_frame,
    tcp,
    udp,
    vxlan,
)
from weavepcap.io.records import FrameChunk


def _templates() -> list[tuple[float, bytes]]:
    """(share of frames, frame): roughly a busy fastdp mesh with sleeve, control, ICMP and background."""
    inner_tcp = ethernet(
        ipv4(tcp(b"d" * 1200, sport=80, dport=41000), src="10.32.0.5", dst="10.40.0.7", proto=6)
    )
    inner_ack = ethernet(
        ipv4(tcp(sport=41000, dport=80, flags=0x10), src="10.40.0.7", dst="10.32.0.5", proto=6)
    )
    heartbeat = ipv4(udp(vxlan(fastdp_heartbeat_frame(0xABCDEF, 1376), 0x0A10B2), sport=51000, dport=6784))
    return [
        (
            0.40,
            ethernet(
                ipv4(
                    udp(vxlan(inner_tcp, 0x0A10B2), sport=51000, dport=6784),
                    src="192.168.1.10",
                    dst="192.168.1.20",
                )
            ),
        ),
        (
            0.25,
            ethernet(
                ipv4(
                    udp(vxlan(inner_ack, 0x0B20A1), sport=52000, dport=6784),
                    src="192.168.1.20",
                    dst="192.168.1.10",
                )
            ),
        ),
        (0.02, ethernet(heartbeat)),
        (
            0.03,
            ethernet(
                ipv4(
                    udp(sleeve([sleeve_heartbeat_frame(7)]), sport=6783, dport=6783),
                    src="192.168.1.10",
                    dst="192.168.1.30",
                )
            ),
        ),
        (
            0.03,
            ethernet(
                ipv4(udp(sleeve([inner_ack]), sport=6783, dport=6783), src="192.168.1.30", dst="192.168.1.10")
            ),
        ),
        (
            0.10,
            ethernet(
                ipv4(tcp(b"x" * 600, sport=443, dport=50123), src="172.16.0.4", dst="192.168.1.10", proto=6)
            ),
        ),
        (0.08, ethernet(ipv4(udp(b"q" * 40, sport=53000, dport=53), src="192.168.1.10", dst="192.168.1.2"))),
        (
            0.03,
            ethernet(
                ipv4(icmp(8, 0, b"\0\1\0\1", b"p" * 56), src="192.168.1.10", dst="192.168.1.1", proto=1)
            ),
        ),
        (0.02, ethernet(bytes(28), ethertype=0x0806)),
        (
            0.02,
            ethernet(
                ipv4(
                    tcp(sport=40001, dport=6783, flags=0x10), src="192.168.1.10", dst="192.168.1.20", proto=6
                )
            ),
        ),
        # the per-packet path: control messages, ICMP errors, fragments
        (
            0.002,
            ethernet(
                ipv4(
                    tcp(control_message(b"\x00"), sport=40001, dport=6783),
                    src="192.168.1.10",
                    dst="192.168.1.20",
                    proto=6,
                )
            ),
        ),
        (
            0.0005,
            ethernet(ipv4(frag_needed(heartbeat[:80], 1454), src="192.168.1.1", dst="192.168.1.10", proto=1)),
        ),
        (0.0025, ethernet(ipv4(b"\0" * 1480, frag_off=1480, df=False, ident=9, proto=17))),
    ]


def make_chunk(frames: int, seed: int = 1) -> FrameChunk:
    """A chunk of `frames` frames drawn from the templates (same bytes per template, like real flows)."""
    templates = _templates()
    weights = np.array([w for w, _ in templates])
    rng = np.random.default_rng(seed)
    choice = rng.choice(len(templates), size=frames, p=weights / weights.sum())
    sizes = np.array([len(f) for _, f in templates], dtype=np.int64)[choice]
    offsets = np.zeros(frames, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)[:-1]
    data = np.empty(int(sizes.sum()), dtype=np.uint8)
    for k, (_, frame) in enumerate(templates):
        rows = np.flatnonzero(choice == k)
        raw = np.frombuffer(frame, dtype=np.uint8)
        data[(offsets[rows][:, None] + np.arange(raw.size)).ravel()] = np.tile(raw, rows.size)
    return FrameChunk(
        data=data,
        offsets=offsets,
        caplen=sizes.astype(np.int32),
        wirelen=sizes.astype(np.int32),
        ts_ns=np.arange(frames, dtype=np.int64) * 1000,
        linktype=np.ones(frames, dtype=np.int16),
        iface=np.zeros(frames, dtype=np.int16),
        frame=np.arange(1, frames + 1, dtype=np.int64),
        file_offset=np.full(frames, -1, dtype=np.int64),
    )
