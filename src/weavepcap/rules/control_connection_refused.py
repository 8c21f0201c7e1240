"""Rule: TCP 6783 refused, or reset before the Weave handshake completes (RST after a session is normal)."""

from __future__ import annotations

import pandas as pd

from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.rules.common import control_counts


def check(ctx: Context) -> list[Finding]:
    bad = ctx.of("tcp.refused", "tcp.reset_early")
    if bad.empty:
        return []
    attempts = ctx.of("tcp.connect_attempt")
    ok = ctx.of("tcp.connected")
    refused = bad[bad["event"] == "tcp.refused"]
    early = bad[bad["event"] == "tcp.reset_early"]
    first = bad.iloc[0]
    refuser, dialer = first["src_host"], first["dst_host"]
    # A completed session later on means the refusals were transient (a restart), not the fault.
    completed_later = not ctx.of("tcp.reset").empty
    facts: dict[str, object] = {**control_counts(ctx), "refused": _per_capture(refused),
                                "reset_before_handshake": _per_capture(early), "accepted": _per_capture(ok),
                                "port": ctx.settings.weave_port, "dialer": dialer, "refuser": refuser}
    n_refused, n_early = int(facts["refused"]), int(facts["reset_before_handshake"])  # type: ignore[call-overload]
    msg = (f"{dialer} tried to connect to {refuser} on TCP {ctx.settings.weave_port} {facts['syn_attempts']} times: "
           + (f"{n_refused} refused with RST" if n_refused else "")
           + (", " if n_refused and n_early else "")
           + (f"{n_early} reset before the Weave handshake completed" if n_early else "") + ".")
    return [ctx.finding(RULE, confidence=0.6 if completed_later else 0.9, message=msg, facts=facts,
                        evidence=[bad.iloc[:1], attempts.iloc[:1], bad.iloc[1:]], hosts=[dialer, refuser],
                        path=f"{dialer} -> {refuser}")]


def _per_capture(events: pd.DataFrame) -> int:
    """How many, counted in the capture that shows the most (both ends' captures show the same packets)."""
    return int(events.groupby("capture").size().max()) if not events.empty else 0


RULE = Rule(
    id="control-connection-refused",
    title="Weave control connection (TCP {weave_port}) refused",
    kind=FAULT,
    needs=("tcp.connect_attempt", "tcp.refused", "tcp.reset_early", "tcp.connected"),
    facts=(
        "accepted", "connections", "dialer", "port", "refused", "refuser", "reset_before_handshake",
        "resets", "syn_attempts",
    ),
    fix=("Make sure weave runs and listens on TCP {port} on {refuser}, and that no firewall rejects TCP {port} "
         "from {dialer} (open TCP {port} and UDP {port}/{fastdp_port})."),
    not_found="no TCP {weave_port} connection was refused or reset before its handshake (RST after a session is Weave's normal close)",
    check=check,
)
