"""Findings → verdict: run the rules, rank what they found, list what was ruled out, and the caveats."""

from __future__ import annotations

from dataclasses import dataclass

from weavepcap.classes import WEAVE_CLASSES
from weavepcap.model import FAULT, Finding, RuledOut, Verdict
from weavepcap.rules import RULES
from weavepcap.rules.base import Context, Rule

CLOCK_UNCERTAINTY_CAVEAT_S = 0.01  # beyond this, "left one host and never reached the other" is shaky


@dataclass
class Diagnosis:
    verdict: Verdict
    findings: list[Finding]  # ranked, most likely root cause first
    ruled_out: list[RuledOut]
    caveats: list[str]


def run_rules(ctx: Context, rules: tuple[Rule, ...] = RULES) -> tuple[list[Finding], list[RuledOut], list[str]]:
    """Fault rules first (ranked by confidence, then RULES order), then status rules if no fault was found."""
    order = {r.id: i for i, r in enumerate(rules)}
    faults: list[Finding] = []
    ruled_out: list[RuledOut] = []
    problems: list[str] = []
    weave_present = any(ctx.class_frames(k) for k in WEAVE_CLASSES)
    for rule in rules:
        if rule.kind != FAULT:
            continue
        if not weave_present:  # every fault rule is about Weave: nothing to judge
            ruled_out.append(RuledOut(rule.id, rule.title_for(ctx.settings), "no Weave traffic in the captures"))
            continue
        try:
            found = rule.check(ctx)
        except Exception as exc:  # one broken rule must not cost the whole verdict
            problems.append(f"rule {rule.id} could not run on this input: {type(exc).__name__}: {exc}")
            continue
        if found:
            faults.extend(found)
        else:
            ruled_out.append(RuledOut(rule.id, rule.title_for(ctx.settings), rule.not_found_for(ctx.settings)))
    faults.sort(key=lambda f: (-round(f.confidence, 3), order.get(f.rule, 99)))
    ctx.findings_so_far = list(faults)
    status: list[Finding] = []
    for rule in rules:
        if rule.kind == FAULT:
            continue
        try:
            found = rule.check(ctx)
        except Exception as exc:
            problems.append(f"rule {rule.id} could not run on this input: {type(exc).__name__}: {exc}")
            continue
        if found:
            status.extend(found)
            ctx.findings_so_far = faults + status
            break  # status rules are alternatives: the first that applies decides
    return faults + status, ruled_out, problems


def verdict_of(findings: list[Finding]) -> Verdict:
    if not findings:
        return Verdict("undetermined", 0.0, "No verdict could be reached.", "", None, (), None, False)
    top = findings[0]
    return Verdict(
        root_cause=top.rule,
        confidence=top.confidence,
        headline=top.message,
        fix=top.fix,
        started_ns=top.started_ns,
        hosts=top.hosts,
        path=top.path,
        is_fault=top.is_fault,
    )


def caveats_of(ctx: Context, verdict: Verdict | None = None) -> list[str]:
    """What limits the verdict: one-sided capture, missing `lo`, damaged captures, clock uncertainty."""
    out: list[str] = []
    hosts = ctx.tl.hosts
    captured = [h for h, i in hosts.items() if i.captures]
    if len(captured) == 1:
        out.append(f"one-sided: only {captured[0]}'s captures were given; what reached the peer cannot be checked.")
    uncaptured = [h for h, i in hosts.items() if not i.captures]
    for h in uncaptured:
        out.append(f"no capture of {h}: delivery to it cannot be checked.")
    # A missing `lo` matters only where something failed: a healthy or Weave-less verdict does not need it.
    quiet = verdict is not None and verdict.root_cause in ("healthy", "no-weave-traffic")
    for h in [] if quiet else captured:
        caps = hosts[h].captures
        if not any(_is_lo_name(c) for c in caps):
            out.append(f"no `lo` capture for {h}: ICMP frag-needed its own kernel sends itself (local MTU too small) "
                       "would only show there.")
    for c in ctx.captures:
        for d in c.damage:
            where = f"frame {d.get('frame')}" if d.get("frame") is not None else f"byte offset {d.get('offset')}"
            out.append(f"{c.name} is damaged at {where}: {d.get('message')}; the verdict rests on what could be read.")
    for h in captured:
        info = hosts[h]
        if info.clock_source == "unknown":
            out.append(f"clock offset of {h} unknown (no packet seen by both it and another host); assumed 0; "
                       "use --clock-offset HOST=SECONDS if its clock is off.")
        elif info.clock_offset_uncertainty_s is not None and info.clock_offset_uncertainty_s > CLOCK_UNCERTAINTY_CAVEAT_S:
            out.append(f"clock offset of {h} is {info.clock_offset_s:+.3f} s +/- {info.clock_offset_uncertainty_s:.3f} s; "
                       "cross-host timing is only that precise.")
    return out


def _is_lo_name(name: str) -> bool:
    stem = name.split(".")[0]
    return stem == "lo" or stem.endswith(("-lo", "_lo"))


def diagnose(ctx: Context) -> Diagnosis:
    findings, ruled_out, problems = run_rules(ctx)
    verdict = verdict_of(findings)
    return Diagnosis(verdict, findings, ruled_out, caveats_of(ctx, verdict) + problems)
