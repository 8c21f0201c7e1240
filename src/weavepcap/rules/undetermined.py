"""Status: Weave traffic present but the evidence does not decide; say which capture is missing."""

from __future__ import annotations

from weavepcap.model import Finding
from weavepcap.rules.base import STATUS, Context, Rule
from weavepcap.rules.common import fastdp_offered_not_working


def check(ctx: Context) -> list[Finding]:
    if ctx.findings_so_far:
        return []
    missing = [h for h, info in ctx.tl.hosts.items() if not info.captures]
    no_lo = [h for h, info in ctx.tl.hosts.items()
             if info.captures and not any("lo" in c.split("-")[-1].split(".")[0] for c in info.captures)]
    parts = []
    if missing:
        parts.append(f"the capture of {', '.join(missing)} (the peer's side)")
    if no_lo:
        parts.append(f"a capture of `lo` on {', '.join(no_lo)} (ICMP the host sends itself)")
    need = "; ".join(parts) if parts else "a longer capture covering the connection start on every host"
    facts: dict[str, object] = {"missing": need}
    msg = f"Weave traffic is present but the evidence does not decide; add {need}."
    if fastdp_offered_not_working(ctx):
        facts["fastdp_not_established"] = True
        msg = ("Both peers negotiated fastdp but no fastdp heartbeat was ever seen arriving or acked: the hosts run on "
               f"sleeve and these captures do not show why; add {need}.")
    return [ctx.finding(RULE, confidence=0.3, message=msg, facts=facts, evidence=[], hosts=[], path=None)]


RULE = Rule(
    id="undetermined",
    title="Evidence does not decide",
    kind=STATUS,
    needs=(),
    facts=("missing", "fastdp_not_established"),
    fix="Capture on every host involved: its underlay interface and `lo`, from before weave connects: {missing}.",
    not_found="another verdict was reached",
    check=check,
)
