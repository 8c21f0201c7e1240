"""Rule: TCP 6783 refused, or reset before the Weave handshake completes (RST after a session is normal)."""

from __future__ import annotations

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
    facts: dict[str, object] = {**control_counts(ctx), "refused": len(refused), "reset_before_handshake": len(early),
                                "connect_attempts": len(attempts), "accepted": len(ok),
                                "port": ctx.settings.weave_port, "dialer": dialer, "refuser": refuser}
    msg = (f"{dialer} tried to connect to {refuser} on TCP {ctx.settings.weave_port} {len(attempts)} times: "
           + (f"{len(refused)} refused with RST" if len(refused) else "")
           + (", " if len(refused) and len(early) else "")
           + (f"{len(early)} reset before the Weave handshake completed" if len(early) else "") + ".")
    return [ctx.finding(RULE, confidence=0.6 if completed_later else 0.9, message=msg, facts=facts,
                        evidence=[bad.iloc[:1], attempts.iloc[:1], bad.iloc[1:]], hosts=[dialer, refuser],
                        path=f"{dialer} -> {refuser}")]


RULE = Rule(
    id="control-connection-refused",
    title="Weave control connection (TCP 6783) refused",
    kind=FAULT,
    needs=("tcp.connect_attempt", "tcp.refused", "tcp.reset_early", "tcp.connected"),
    fix=("Make sure weave runs and listens on TCP {port} on {refuser}, and that no firewall rejects TCP {port} "
         "from {dialer} (open TCP {port} and UDP {port}/6784)."),
    not_found="no TCP 6783 connection was refused or reset before its handshake (RST after a session is Weave's normal close)",
    check=check,
)
