"""The cross-host path matrix: the JSON `paths` list laid out as an N x N grid (sender rows, receiver columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OK = "ok"
BROKEN = "broken"  # heartbeats sent and none received, or a refused size below the overlay's packets
UNSEEN = "unseen"  # no path in this direction in the captures


@dataclass(frozen=True)
class Cell:
    """One direction of one host pair, as a reviewer reads it."""

    mode: str
    heartbeats: str  # "sent/received"
    mtu: str  # "[largest delivered, smallest refused]" with "?" for an unknown end
    status: str

    def text(self) -> str:
        if self.status == UNSEEN:
            return "-"
        flag = " !" if self.status == BROKEN else ""
        return f"{self.mode} hb {self.heartbeats} mtu {self.mtu}{flag}"


def _number(value: object) -> str:
    return "?" if value is None else str(value)


def cell_of(path: Mapping[str, Any]) -> Cell:
    sent = path.get("heartbeats_sent") or 0
    received = path.get("heartbeats_received") or 0
    low, high = path.get("path_mtu_low"), path.get("path_mtu_high")
    hb_len = path.get("heartbeat_ip_len")
    too_big = isinstance(high, int) and isinstance(hb_len, int) and hb_len > high
    status = BROKEN if (sent and not received) or too_big else OK
    mtu = "[?]" if low is None and high is None else f"[{_number(low)}, {_number(high)}]"
    return Cell(mode=str(path.get("mode") or "?"), heartbeats=f"{sent}/{received}", mtu=mtu, status=status)


def path_matrix(paths: Sequence[Mapping[str, Any]], hosts: Sequence[str] = ()) -> tuple[list[str], dict[tuple[str, str], Cell]]:
    """Hosts in order (those given first, then any other the paths name) and a cell per (sender, receiver).

    Several address pairs between the same two hosts (multi-homed peers) keep the first; the JSON
    `paths` list has every one.
    """
    order = list(dict.fromkeys([*hosts, *(str(p.get("src_host")) for p in paths), *(str(p.get("dst_host")) for p in paths)]))
    named = [h for h in order if any(h in (str(p.get("src_host")), str(p.get("dst_host"))) for p in paths)]
    cells: dict[tuple[str, str], Cell] = {}
    for p in paths:
        key = (str(p.get("src_host")), str(p.get("dst_host")))
        cells.setdefault(key, cell_of(p))
    return named, cells


def unseen() -> Cell:
    return Cell(mode="", heartbeats="", mtu="", status=UNSEEN)


def render_matrix_text(paths: Sequence[Mapping[str, Any]], hosts: Sequence[str] = (), clean: Any = str) -> list[str]:
    """Terminal lines of the matrix (rows: from, columns: to); empty when there are no paths."""
    names, cells = path_matrix(paths, hosts)
    if not names:
        return []
    labels = [clean(n) for n in names]
    grid = [[("" if a == b else cells.get((a, b), unseen()).text()) for b in names] for a in names]
    first = max(len("from \\ to"), *(len(x) for x in labels))
    widths = [max(len(labels[j]), *(len(grid[i][j]) for i in range(len(names)))) for j in range(len(names))]
    lines = ["  " + "from \\ to".ljust(first) + "  " + "  ".join(lab.ljust(w) for lab, w in zip(labels, widths, strict=True))]
    for i, label in enumerate(labels):
        lines.append("  " + label.ljust(first) + "  " + "  ".join(c.ljust(w) for c, w in zip(grid[i], widths, strict=True)))
    return [line.rstrip() for line in lines]
