"""A rule is a declared object (id, title, kind, events it reads, fix template) plus a small check()."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weavepcap.detect.base import Timeline, text
from weavepcap.model import FAULT, STATUS, CaptureRecord, Evidence, Finding
from weavepcap.settings import Settings


@dataclass
class Context:
    """What a rule may read: the aligned packets, the events, the hosts and the captures."""

    tl: Timeline
    events: pd.DataFrame
    captures: list[CaptureRecord] = field(default_factory=list)
    findings_so_far: list[Finding] = field(default_factory=list)

    @property
    def packets(self) -> pd.DataFrame:
        return self.tl.packets

    @property
    def settings(self) -> Settings:
        return self.tl.settings

    def of(self, *names: str) -> pd.DataFrame:
        """Events with any of these names, in time order."""
        if self.events.empty:
            return self.events
        return self.events[self.events["event"].isin(names)]

    def class_frames(self, klass: str) -> int:
        """Frames of a class over all captures (from the full-capture summaries, not only kept rows)."""
        return sum(int(c.classes.get(klass, {}).get("frames", 0)) for c in self.captures)

    def has_capture(self, host: str) -> bool:
        info = self.tl.hosts.get(host)
        return bool(info and info.captures)

    def _ordered_hosts(self, hosts: Iterable[str]) -> tuple[str, ...]:
        """Distinct hosts in the analysis' host order (first named first), unknown names after."""
        order = {h: i for i, h in enumerate(self.tl.hosts)}
        return tuple(sorted(_plain_hosts(hosts), key=lambda h: (order.get(h, len(order)), h)))

    def finding(
        self,
        rule: Rule,
        *,
        confidence: float,
        message: str,
        facts: dict[str, object],
        evidence: Iterable[pd.DataFrame],
        hosts: Iterable[str] = (),
        path: str | None = None,
    ) -> Finding:
        """A finding for `rule`; evidence = event tables, most telling first (duplicates dropped, capped)."""
        refs: list[Evidence] = []
        seen: set[tuple[str, int]] = set()
        for table in evidence:
            if table is None or table.empty:
                continue
            for cap, host, frame, t, flt, note in zip(
                text(table["capture"]), text(table["host"]), table["frame"].to_numpy(), table["t_ns"].to_numpy(),
                text(table["filter"]), text(table["message"]), strict=True,
            ):
                key = (cap, int(frame))
                if key in seen:
                    continue
                seen.add(key)
                refs.append(Evidence(cap, host, int(frame), int(t), flt, note))
        undeclared = sorted(set(facts) - set(rule.facts))
        if undeclared:  # a programming error in the rule, caught by its tests
            raise ValueError(f"rule {rule.id} reports facts it does not declare: {', '.join(undeclared)}")
        cap = self.settings.evidence_cap
        fix = with_ports(rule.fix, self.settings).format(**facts) if rule.fix else ""
        started = min((r.ts_ns for r in refs), default=None)
        return Finding(
            rule=rule.id,
            title=rule.title_for(self.settings),
            confidence=float(max(0.0, min(1.0, confidence))),
            message=message,
            facts={k: _plain(v) for k, v in facts.items()},
            fix=fix,
            evidence=refs[:cap],
            evidence_total=len(refs),
            hosts=self._ordered_hosts(hosts),
            path=path,
            started_ns=started,
            is_fault=rule.kind == FAULT,
        )


def _plain_hosts(hosts: Iterable[str]) -> list[str]:
    return [h for h in dict.fromkeys(hosts) if h]


def _plain(value: object) -> object:
    """numpy scalars → Python scalars (the facts go to JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Rule:
    """One diagnosis: declared fields read top to bottom; only `check` is logic."""

    id: str  # kebab-case, stable forever (JSON, README, HTML anchors)
    title: str
    kind: str  # FAULT (a root cause) or STATUS (healthy / no-weave-traffic / undetermined)
    needs: tuple[str, ...]  # event names (detect.EVENTS) the rule reads
    facts: tuple[str, ...]  # the facts its findings report (and only these: path facts belong to `paths`)
    fix: str  # template filled from the finding's facts
    not_found: str  # why it is ruled out when it finds nothing
    check: Callable[[Context], list[Finding]]

    @property
    def is_fault(self) -> bool:
        return self.kind == FAULT

    def title_for(self, settings: Settings) -> str:
        return with_ports(self.title, settings)

    def not_found_for(self, settings: Settings) -> str:
        return with_ports(self.not_found, settings)


def with_ports(text: str, settings: Settings) -> str:
    """`{weave_port}` and `{fastdp_port}` filled in from the settings; other `{fact}` fields stay for later."""
    return text.replace("{weave_port}", str(settings.weave_port)).replace("{fastdp_port}", str(settings.fastdp_port))


__all__ = ["Context", "Rule", "FAULT", "STATUS", "with_ports"]
