"""Random packet tables never break the analysis: a verdict from RULES, no rule that could not run."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulekit import Scene, esp, fastdp_hb, pmtu_verify, sleeve_data, sleeve_hb, tcp

from weavepcap.rules import RULES_BY_ID

HOSTS = ("host-a", "host-b")
KINDS = {
    "fastdp": lambda: fastdp_hb(1460),
    "fastdp_small": lambda: fastdp_hb(1426),
    "sleeve": sleeve_hb,
    "data": sleeve_data,
    "probe": lambda: pmtu_verify(1500),
    "esp": esp,
    "syn": lambda: tcp(45000, 6783, 0x02, 1),
    "rst": lambda: tcp(6783, 45000, 0x14, 0),
    "frag": lambda: {"ip_proto": 17, "ip_mf": True, "ip_frag_off": 0, "ip_len": 1500, "ip_df": False,
                     "klass": "weave.sleeve.fragtest", "reasm_status": "incomplete"},
    "icmp": lambda: {"ip_proto": 1, "icmp_type": 3, "icmp_code": 4, "icmp_mtu": 1454, "ip_len": 576,
                     "klass": "icmp.frag_needed", "q_ip_len": 1460, "q_dport": 6784, "q_ip_proto": 17,
                     "q_inner_zero_eth": True},
}

packet = st.tuples(st.sampled_from(HOSTS), st.floats(0, 10), st.sampled_from(sorted(KINDS)), st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(packet, max_size=40), st.sampled_from([("host-a", "host-b"), ("host-a",), ("host-b",)]),
       st.floats(-5, 5))
def test_random_tables_get_a_verdict(packets, captured, offset) -> None:  # noqa: ANN001
    s = Scene(captured=captured, offsets_s={"host-b": offset})
    for src, t, kind, delivered in packets:
        dst = "host-b" if src == "host-a" else "host-a"
        s.send(src, dst, t, KINDS[kind](), delivered=delivered)
    a = s.analyze()
    assert a.verdict.root_cause in RULES_BY_ID
    assert not [c for c in a.caveats if "could not run" in c], a.caveats
    assert a.to_json()
