"""The diagnosis rules, registered explicitly: adding a rule = one module + one line here + its tests."""

from __future__ import annotations

from weavepcap.rules import (
    control_connection_refused,
    esp_blocked,
    fastdp_heartbeat_exceeds_path_mtu,
    fastdp_port_blocked,
    fragments_dropped,
    healthy,
    no_weave_traffic,
    peer_silent,
    pmtu_blackhole,
    sleeve_port_blocked,
    tx_stall_after_pmtu_probe,
    undetermined,
)
from weavepcap.rules.base import Context, Rule

# Order = precedence when two findings have the same confidence. Status rules run last, in this order.
RULES: tuple[Rule, ...] = (
    tx_stall_after_pmtu_probe.RULE,
    fastdp_heartbeat_exceeds_path_mtu.RULE,
    pmtu_blackhole.RULE,
    control_connection_refused.RULE,
    peer_silent.RULE,
    fragments_dropped.RULE,
    fastdp_port_blocked.RULE,
    sleeve_port_blocked.RULE,
    esp_blocked.RULE,
    no_weave_traffic.RULE,
    healthy.RULE,
    undetermined.RULE,
)
RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}

__all__ = ["RULES", "RULES_BY_ID", "Rule", "Context"]
