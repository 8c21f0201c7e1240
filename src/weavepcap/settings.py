"""Settings: the port map and thresholds, with documented defaults, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from weavepcap.wire import GENEVE_PORT, VXLAN_IANA_PORT, VXLAN_LINUX_PORT, WEAVE_PORT, WIREGUARD_PORT


@dataclass(frozen=True)
class Settings:
    """Everything a port or a threshold means lives here; nothing else hard-codes a port."""

    weave_port: int = WEAVE_PORT  # TCP control + UDP sleeve; fastdp VXLAN is weave_port + 1
    vxlan_ports: frozenset[int] = field(default_factory=lambda: frozenset({VXLAN_IANA_PORT, VXLAN_LINUX_PORT}))
    geneve_ports: frozenset[int] = field(default_factory=lambda: frozenset({GENEVE_PORT}))
    wireguard_ports: frozenset[int] = field(default_factory=lambda: frozenset({WIREGUARD_PORT}))
    chunk_bytes: int = 32 * 1024 * 1024  # bytes of capture read per chunk (memory bound)
    defrag_max_trains: int = 4096  # open fragment trains kept at once; older ones are evicted and reported
    defrag_max_bytes: int = 64 * 1024 * 1024  # bytes buffered for reassembly at once
    defrag_timeout_ns: int = 30_000_000_000  # an open train older than this (capture time) is incomplete
    evidence_cap: int = 20  # evidence frames kept per finding (the total is kept too)
    # batch: limits on tar/zip archives against decompression bombs (a violation fails that archive)
    archive_max_members: int = 10_000  # members (of any type) in one archive
    archive_max_member_bytes: int = 8 * 1024**3  # uncompressed bytes of one member
    archive_max_total_bytes: int = 32 * 1024**3  # uncompressed bytes of all members together
    archive_max_ratio: float = 200.0  # uncompressed bytes / archive file bytes (the samples: 25-45)

    @property
    def fastdp_port(self) -> int:
        return self.weave_port + 1


DEFAULT_SETTINGS = Settings()
