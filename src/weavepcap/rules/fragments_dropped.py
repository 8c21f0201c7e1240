"""Rule: fragment trains (the sleeve fragmentation test) never complete at the receiver."""

from __future__ import annotations

from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule


def check(ctx: Context) -> list[Finding]:
    lost = ctx.of("fragments.lost")
    partial = ctx.of("fragments.incomplete")
    done = ctx.of("fragments.reassembled")
    sent = ctx.of("fragments.sent")
    acked = ctx.of("sleeve.fragtest_acked")
    if lost.empty and partial.empty:
        # One-sided: fragmentation tests went out and were never acked.
        tests = sent[[bool(a.get("fragtest")) for a in sent["attrs"]]] if not sent.empty else sent
        if not done.empty or tests.empty or not acked.empty:
            return []
        receivers = set(tests["dst_host"])
        if any(ctx.has_capture(h) for h in receivers):
            return []  # the receiver's capture would have shown the loss above
        if ctx.of("sleeve.heartbeat_acked", "fastdp.heartbeat_acked").empty:
            return []  # nothing acked at all: not specific to fragments
        first = tests.iloc[0]
        facts = {"trains_sent": len(tests), "trains_lost": None, "path": f"{first['src_host']} -> {first['dst_host']}"}
        return [ctx.finding(RULE, confidence=0.5, message=(f"{len(tests)} sleeve fragmentation tests were sent and "
                            "never acked while heartbeats were: fragments are probably dropped on the path."),
                            facts=facts, evidence=[tests], hosts=[first["src_host"], first["dst_host"]],
                            path=facts["path"])]
    bad = lost if not lost.empty else partial
    first = bad.iloc[0]
    src, dst = first["src_host"], first["dst_host"] or first["host"]
    facts: dict[str, object] = {"trains_sent": len(sent), "trains_lost": len(lost), "trains_incomplete": len(partial),
                                "trains_reassembled": len(done), "path": f"{src} -> {dst}",
                                "fragtest": any(bool(a.get("fragtest")) for a in bad["attrs"])}
    what = "sleeve fragmentation tests" if facts["fragtest"] else "fragmented datagrams"
    msg = (f"{len(lost) + len(partial)} {what} {src} -> {dst} never completed at the receiver "
           f"({len(lost)} with no fragment arriving, {len(partial)} partial; {len(done)} reassembled).")
    conf = 0.85 if len(done) == 0 else 0.6
    return [ctx.finding(RULE, confidence=conf, message=msg, facts=facts,
                        evidence=[sent.iloc[:1], bad.iloc[:2], sent.iloc[1:]], hosts=[src, dst], path=f"{src} -> {dst}")]


RULE = Rule(
    id="fragments-dropped",
    title="IP fragments dropped on the path",
    kind=FAULT,
    needs=("fragments.sent", "fragments.lost", "fragments.incomplete", "fragments.reassembled", "sleeve.fragtest_acked"),
    fix=("Let IP fragments through between the hosts (firewall rules that drop fragments, or middleboxes that cannot "
         "reassemble); until then Weave fragments large frames itself on the DF path, at a cost."),
    not_found="every fragment train that was sent toward a captured receiver completed there",
    check=check,
)
