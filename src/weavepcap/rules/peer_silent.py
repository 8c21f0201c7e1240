"""Rule: a host sends nothing at all while others keep sending to it (not one-way loss)."""

from __future__ import annotations

from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule


def check(ctx: Context) -> list[Finding]:
    silent = ctx.of("host.silent")
    if silent.empty:
        return []
    stopped = {str(a.get("host")) for a in ctx.of("host.tx_stopped")["attrs"]} if not ctx.of("host.tx_stopped").empty else set()
    findings: list[Finding] = []
    for _, ev in silent.iterrows():
        attrs = ev["attrs"]
        name = attrs.get("host") or attrs.get("address")
        if name in stopped:
            continue
        own = bool(attrs.get("has_capture")) and ctx.has_capture(str(attrs.get("host") or ""))
        facts: dict[str, object] = {"host": name, "address": attrs.get("address"), "frames_to": attrs.get("frames_to"),
                                    "own_capture": own}
        msg = str(ev["message"]) + ("" if own else " (without its own capture this could also be loss on the way back)")
        findings.append(ctx.finding(RULE, confidence=0.8 if own else 0.55, message=msg, facts=facts,
                                    evidence=[silent[silent.index == ev.name]], hosts=[str(name)], path=None))
    return findings[:1] + [f for f in findings[1:] if f.facts.get("own_capture")]


RULE = Rule(
    id="peer-silent",
    title="A peer sends nothing at all",
    kind=FAULT,
    needs=("host.silent", "host.tx_stopped"),
    facts=("host", "address", "frames_to", "own_capture"),
    fix=("Check that weave runs on {host} (`weave status`, container logs) and that its host has network; "
         "capture on {host} itself to tell a dead peer from one-way loss."),
    not_found="every host that was sent Weave traffic also sent some",
    check=check,
)
