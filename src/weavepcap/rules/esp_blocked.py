"""Rule: encrypted fastdp's ESP (IP protocol 50) leaves a host but never arrives."""

from __future__ import annotations

from weavepcap.detect.base import text
from weavepcap.model import Finding
from weavepcap.rules.base import FAULT, Context, Rule
from weavepcap.wire import overlay_mtu_of_heartbeat


def check(ctx: Context) -> list[Finding]:
    pk = ctx.packets
    d = ctx.tl.delivery
    if pk.empty:
        return []
    esp = pk[(text(pk["klass"]) == "weave.fastdp.esp") & (text(pk["dir"]) == "tx")]
    if esp.empty:
        return []
    findings: list[Finding] = []
    icmp = ctx.of("icmp.frag_needed")
    too_big = {(str(a.get("quoted_src")), str(a.get("quoted_dst"))) for a in icmp["attrs"]
               if a.get("quoted") == "esp"} if not icmp.empty else set()
    for (s, dd), g in esp.groupby([text(esp["ip_src"]), text(esp["ip_dst"])], sort=False):
        if (s, dd) in too_big:
            continue  # an ICMP says it was too big: a size problem, not a blocked protocol
        src = str(g["src_host"].iloc[0] or s)
        dst = str(g["dst_host"].iloc[0] or dd)
        sub = d.reindex(g.index) if not d.empty else None
        checkable = int(sub["checkable"].fillna(False).astype(bool).sum()) if sub is not None else 0
        delivered = int(sub["delivered"].fillna(False).astype(bool).sum()) if sub is not None else 0
        back = int(((text(pk["ip_src"]) == dd) & (text(pk["ip_dst"]) == s) & (text(pk["klass"]) == "weave.fastdp.esp")).sum())
        if checkable and not delivered:
            conf, how = 0.85, "none arrived at the receiver"
        elif not checkable and back == 0 and len(g) >= 3:
            conf, how = 0.5, "none came back the other way"
        else:
            continue
        # Weave holds data back until fastdp is acked, so the first ESP packet of a path is a heartbeat.
        first = g.loc[g["t_ns"].idxmin()]
        ip_len, ipv6 = int(first["ip_len"]), int(first["ip_version"]) == 6
        facts: dict[str, object] = {"path": f"{src} -> {dst}", "esp_sent": int(len(g)),
                                    "esp_delivered": delivered, "heartbeat_ip_len": ip_len,
                                    "heartbeat_frame_len": int(first["wirelen"]),
                                    "overlay_mtu": overlay_mtu_of_heartbeat(ip_len, encrypted=True, ipv6=ipv6)}
        msg = f"{len(g)} ESP packets (encrypted fastdp) {src} -> {dst} were sent and {how}."
        findings.append(ctx.finding(RULE, confidence=conf, message=msg, facts=facts,
                                    evidence=[ctx.of("fastdp.esp_sent")], hosts=[src, dst], path=f"{src} -> {dst}"))
    return findings


RULE = Rule(
    id="esp-blocked",
    title="Encrypted fastdp: ESP (IP protocol 50) blocked",
    kind=FAULT,
    needs=("fastdp.esp_sent", "fastdp.esp_received"),
    facts=("path", "esp_sent", "esp_delivered", "heartbeat_ip_len", "heartbeat_frame_len", "overlay_mtu"),
    fix=("Allow IP protocol 50 (ESP) between the hosts (cloud firewalls such as GCP block it by default), "
         "or run unencrypted fastdp on trusted links."),
    not_found="no ESP was sent, or it arrived",
    check=check,
)
