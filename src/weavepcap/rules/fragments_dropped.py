"""Rule: fragment trains (the sleeve fragmentation test) never complete at the receiver."""

from __future__ import annotations

import pandas as pd

from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import overlay_facts


def check(ctx: Context) -> list[Finding]:
    # Only trains between Weave hosts (or the sleeve fragmentation test itself) say something about Weave.
    lost = _between_hosts(ctx, ctx.of("fragments.lost"))
    partial = _between_hosts(ctx, ctx.of("fragments.incomplete"))
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
    pk = ctx.packets
    frag_tx = int(((pk["klass"] == "weave.sleeve.fragtest") & (pk["dir"] == "tx")).sum())
    facts: dict[str, object] = {**overlay_facts(ctx), "fragtest_fragments_sent": frag_tx, "trains_sent": len(sent), "trains_lost": len(lost), "trains_incomplete": len(partial),
                                "trains_reassembled": len(done), "path": f"{src} -> {dst}",
                                "fragtest": any(bool(a.get("fragtest")) for a in bad["attrs"])}
    what = "sleeve fragmentation tests" if facts["fragtest"] else "fragmented datagrams"
    msg = (f"{len(lost) + len(partial)} {what} {src} -> {dst} never completed at the receiver "
           f"({len(lost)} with no fragment arriving, {len(partial)} partial; {len(done)} reassembled).")
    conf = 0.85 if len(done) == 0 else 0.6
    # A 60049-byte test is mostly full-size fragments: if only short ones arrived, size killed the rest.
    arrived = [int(a.get("largest_ip_len", 0)) for a in partial["attrs"]] if not partial.empty else []
    if lost.empty and arrived and max(arrived) < SHORT_FRAGMENT:
        conf = 0.45
        facts["only_short_fragments_arrived"] = True
        msg += (f" Only fragments up to {max(arrived)} bytes arrived: large packets are being lost, which points "
                "at a path MTU problem rather than a fragment filter.")
    return [ctx.finding(RULE, confidence=conf, message=msg, facts=facts,
                        evidence=[sent.iloc[:1], bad.iloc[:2],
                                  _working_at(ctx, dst),
                                  sent.iloc[1:]], hosts=[src, dst], path=f"{src} -> {dst}")]


SHORT_FRAGMENT = 1000  # IP length below which a fragment is the short tail of a train


def _between_hosts(ctx: Context, events: pd.DataFrame) -> pd.DataFrame:
    if events.empty:
        return events
    known = {h for h, i in ctx.tl.hosts.items() if i.addresses}
    test = [bool(a.get("fragtest")) for a in events["attrs"]]
    inside = events["src_host"].isin(known).to_numpy() & events["dst_host"].isin(known).to_numpy()
    return events[pd.Series(test, index=events.index).to_numpy() | inside]


def _working_at(ctx: Context, host: str) -> pd.DataFrame:
    """A heartbeat arriving at the receiver: the overlay itself works, only fragments are lost."""
    got = ctx.of("fastdp.heartbeat_received", "sleeve.heartbeat_received")
    if got.empty:
        return got
    at = got[got["host"] == host]
    fast = at[at["event"] == "fastdp.heartbeat_received"]
    return (fast if not fast.empty else at if not at.empty else got).iloc[:1]


RULE = Rule(
    id="fragments-dropped",
    title="IP fragments dropped on the path",
    kind=FAULT,
    needs=("fragments.sent", "fragments.lost", "fragments.incomplete", "fragments.reassembled", "sleeve.fragtest_acked"),
    facts=(
        "path", "fragtest", "fragtest_fragments_sent", "trains_sent", "trains_lost", "trains_incomplete",
        "trains_reassembled", "only_short_fragments_arrived", "path_mtu", "heartbeat_ip_len",
        "heartbeat_frame_len", "overlay_mtu",
    ),
    fix=("Let IP fragments through between the hosts (firewall rules that drop fragments, or middleboxes that cannot "
         "reassemble); until then Weave fragments large frames itself on the DF path, at a cost."),
    not_found="every fragment train that was sent toward a captured receiver completed there",
    check=check,
)
