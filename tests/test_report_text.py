"""The terminal summary: the story in runs (evidence first), the path matrix, and who named each host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from weavepcap.report.matrix import BROKEN, OK, cell_of, path_matrix, render_matrix_text
from weavepcap.report.textreport import STORY_SHOWN, render_text
from weavepcap.runs import collapse

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"analysis-{name}.json").read_text(encoding="utf-8"))
    doc.setdefault("timeline_runs", collapse(doc.get("timeline") or []))
    return doc


def event(t: float, frame: int, *, name: str = "icmp.frag_needed", host: str = "host-a",
          capture: str = "host-a-lo.pcap", message: str = "ICMP too big from the host itself") -> dict[str, Any]:
    return {"t": t, "time": f"2026-01-01T00:00:{t:09.6f}Z", "frame": frame, "event": name, "host": host,
            "capture": capture, "src_host": host, "dst_host": host, "message": message,
            "filter": f"frame.number == {frame} && icmp"}


def doc_with(timeline: list[dict[str, Any]], evidence: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc = fixture("p2-fault")
    doc["timeline"] = timeline
    doc["timeline_runs"] = collapse(timeline)
    doc["findings"][0]["evidence"] = evidence or []
    return doc


def story(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Story ("))
    out = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        out.append(line)
    return out


def test_repeats_are_one_line_with_count_time_span_and_frame_range() -> None:
    text = render_text(doc_with([event(0.5 * i, i + 1) for i in range(12)]))
    (line,) = story(text)
    assert "x12 until +5.500s" in line and "[host-a-lo.pcap frames 1-12]" in line
    assert "Story (12 events in 1 runs; 1 rows" in text


def test_long_stories_show_the_evidence_runs_first_then_the_earliest_and_say_what_is_left() -> None:
    timeline = [event(float(i), 1, name=f"e{i}", host=f"h{i}", capture=f"c{i}.pcap", message=f"event {i}")
                for i in range(40)]
    text = render_text(doc_with(timeline, evidence=[{"capture": "c33.pcap", "frame": 1, "time": "", "host": "h33",
                                                     "filter": "frame.number == 1"}]))
    lines = story(text)
    assert len(lines) == STORY_SHOWN + 1 and lines[-1].startswith(f"  ... {40 - STORY_SHOWN} more runs")
    shown = lines[:-1]
    assert shown[-1].endswith("event 33  [c33.pcap frame 1]")  # the evidence run, though late, is shown
    assert shown[0].endswith("event 0  [c0.pcap frame 1]") and shown[-2].endswith(
        f"event {STORY_SHOWN - 2}  [c{STORY_SHOWN - 2}.pcap frame 1]")


def test_story_text_from_packets_is_one_clean_line() -> None:
    text = render_text(doc_with([event(0.0, 1, message="evil\x1b[31m\nname")]))
    (line,) = story(text)
    assert "\x1b" not in line and "evil?[31m?name" in line


def test_matrix_cells_flag_broken_directions() -> None:
    paths = [{"src_host": "a", "dst_host": "b", "mode": "sleeve", "heartbeats_sent": 5, "heartbeats_received": 0,
              "path_mtu_low": 1392, "path_mtu_high": 1454, "heartbeat_ip_len": 1460},
             {"src_host": "b", "dst_host": "a", "mode": "fastdp", "heartbeats_sent": 5, "heartbeats_received": 5,
              "path_mtu_low": None, "path_mtu_high": None, "heartbeat_ip_len": 1426}]
    hosts, cells = path_matrix(paths, ["a", "b", "router"])
    assert hosts == ["a", "b"]  # a host on no path gets no row
    assert cells[("a", "b")].status == BROKEN and cells[("b", "a")].status == OK
    assert cells[("a", "b")].mtu == "[1392, 1454]" and cells[("b", "a")].mtu == "[?]"
    lines = render_matrix_text(paths, ["a", "b"])
    assert lines[1].split()[:2] == ["a", "sleeve"] and lines[1].endswith("!")
    assert "fastdp hb 5/5 mtu [?]" in lines[2]


def test_heartbeats_bigger_than_the_refused_size_are_broken_even_if_some_arrived() -> None:
    cell = cell_of({"mode": "sleeve", "heartbeats_sent": 3, "heartbeats_received": 3, "path_mtu_high": 1454,
                    "heartbeat_ip_len": 1460})
    assert cell.status == BROKEN


def test_five_hosts_make_a_five_by_five_grid_with_unseen_pairs_dashed() -> None:
    names = [f"n{i}" for i in range(5)]
    paths = [{"src_host": a, "dst_host": b, "mode": "fastdp", "heartbeats_sent": 1, "heartbeats_received": 1}
             for a in names for b in names if a != b and (a, b) != ("n0", "n4")]
    lines = render_matrix_text(paths, names)
    assert len(lines) == 6
    assert lines[1].split()[-1] == "-"  # n0 -> n4 never seen


def test_terminal_shows_the_matrix_and_who_named_each_host() -> None:
    doc = fixture("p2-fault")
    doc["hosts"][0]["named_by"] = "the file name, without the interface 'eth0'"
    text = render_text(doc)
    assert "named by the file name, without the interface 'eth0'" in text
    assert "Paths (rows send, columns receive" in text and "from \\ to" in text
