"""Runs: repeated timeline events (same event, same capture, same hosts) collapsed into one row each."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# A run's Wireshark filter lists its frames up to this many; longer runs filter on the frame range.
FILTER_LIST_MAX = 50
_FRAME_TERM = re.compile(r"^frame\.number == \d+(?: && )?")


def _key(event: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    return (str(event.get("event", "")), str(event.get("capture", "")), str(event.get("host", "")),
            str(event.get("src_host", "")), str(event.get("dst_host", "")))


def _hosts(event: Mapping[str, Any]) -> set[str]:
    return {h for h in (str(event.get("host", "")), str(event.get("src_host", "")), str(event.get("dst_host", ""))) if h}


def collapse(timeline: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Runs of a time-ordered timeline (the JSON document's `timeline` entries), in the order they start.

    An event joins the open run of its (event, capture, host, source host, destination host) unless, since
    that run's last event, a *different* kind of event touched one of its hosts — so a host's own ICMP
    frag-needed every 0.5 s is one run until something else happens to that host, even while another
    host's identical ICMP interleaves with it. Every event belongs to exactly one run; `index` is the
    position of the run's first event in `timeline`, `members` the positions of all of them.
    """
    runs: list[dict[str, Any]] = []
    open_runs: dict[tuple[str, str, str, str, str], int] = {}  # key -> index in runs
    touched: dict[str, dict[str, int]] = {}  # host -> event name -> position of the last such event touching it
    for position, event in enumerate(timeline):
        key = _key(event)
        hosts = _hosts(event)
        open_index = open_runs.get(key)
        if open_index is not None:
            run = runs[open_index]
            since = run["members"][-1]
            interrupted = any(at > since for h in hosts for kind, at in touched.get(h, {}).items() if kind != key[0])
            if interrupted:
                open_index = None
        if open_index is None:
            open_runs[key] = len(runs)
            runs.append({"members": [position], "first": event, "last": event})
        else:
            run = runs[open_index]
            run["members"].append(position)
            run["last"] = event
        for h in hosts:
            touched.setdefault(h, {})[key[0]] = position
    return [_summary(run, timeline) for run in runs]


def _summary(run: dict[str, Any], timeline: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    first, last = run["first"], run["last"]
    members: list[int] = run["members"]
    frames = [int(timeline[i].get("frame", 0)) for i in members]
    return {
        "index": members[0],
        "members": members,
        "count": len(members),
        "event": first.get("event"),
        "host": first.get("host"),
        "capture": first.get("capture"),
        "src_host": first.get("src_host", ""),
        "dst_host": first.get("dst_host", ""),
        "first_frame": frames[0],
        "last_frame": frames[-1],
        "first_time": first.get("time"),
        "last_time": last.get("time"),
        "t": first.get("t"),
        "t_last": last.get("t"),
        "message": first.get("message"),
        "filter": run_filter([str(timeline[i].get("filter", "")) for i in members], frames),
    }


def run_filter(filters: Sequence[str], frames: Sequence[int]) -> str:
    """One display filter showing every frame of a run: its frames listed (or their range), plus the protocol
    part the single events' filters share."""
    if len(frames) == 1:
        return filters[0] if filters else f"frame.number == {frames[0]}"
    rests = {_FRAME_TERM.sub("", f) for f in filters}
    rest = rests.pop() if len(rests) == 1 else ""
    distinct = sorted(set(frames))
    if len(distinct) <= FILTER_LIST_MAX:
        numbers = f"frame.number in {{{','.join(map(str, distinct))}}}"
    else:
        numbers = f"frame.number >= {distinct[0]} && frame.number <= {distinct[-1]}"
    return f"{numbers} && {rest}" if rest else numbers
