"""Timeline runs: repeated events collapse into one row, interrupted only by something else on their hosts."""

from __future__ import annotations

import subprocess

from conftest import SAMPLES, need_tool
from hypothesis import given
from hypothesis import strategies as st

from weavepcap.runs import FILTER_LIST_MAX, collapse, run_filter


def ev(event: str, frame: int, host: str = "a", src: str = "a", dst: str = "b", capture: str = "a-lo.pcap",
       proto: str = "icmp.type == 3") -> dict[str, object]:
    return {"event": event, "frame": frame, "host": host, "src_host": src, "dst_host": dst, "capture": capture,
            "time": f"t{frame}", "t": frame / 10, "message": f"{event} {frame}",
            "filter": f"frame.number == {frame} && {proto}"}


def test_a_repeated_event_is_one_run_with_count_frames_times_and_a_filter_for_all() -> None:
    timeline = [ev("icmp.frag_needed", f) for f in (3, 5, 7, 9)]
    (run,) = collapse(timeline)
    assert run["count"] == 4 and run["first_frame"] == 3 and run["last_frame"] == 9
    assert run["first_time"] == "t3" and run["last_time"] == "t9" and run["members"] == [0, 1, 2, 3]
    assert run["filter"] == "frame.number in {3,5,7,9} && icmp.type == 3"


def test_the_same_event_of_another_host_interleaving_does_not_break_the_run() -> None:
    timeline = []
    for f in range(1, 7):
        timeline += [ev("icmp.frag_needed", f, host="a", src="a", dst="a"),
                     ev("icmp.frag_needed", f, host="b", src="b", dst="b", capture="b-lo.pcap")]
    runs = collapse(timeline)
    assert [(r["host"], r["count"]) for r in runs] == [("a", 6), ("b", 6)]


def test_another_kind_of_event_on_the_same_host_starts_a_new_run() -> None:
    timeline = [ev("fastdp.heartbeat_sent", 1), ev("fastdp.heartbeat_sent", 2), ev("mode.sleeve_after_fastdp", 3),
                ev("fastdp.heartbeat_sent", 4)]
    runs = collapse(timeline)
    assert [(r["event"], r["count"]) for r in runs] == [("fastdp.heartbeat_sent", 2), ("mode.sleeve_after_fastdp", 1),
                                                        ("fastdp.heartbeat_sent", 1)]
    assert runs[1]["filter"] == "frame.number == 3 && icmp.type == 3"  # a single event keeps its own filter


def test_long_runs_filter_on_the_frame_range_and_mixed_filters_keep_only_frames() -> None:
    frames = list(range(1, 2 * FILTER_LIST_MAX))
    assert run_filter([f"frame.number == {f} && udp" for f in frames], frames) == \
        f"frame.number >= 1 && frame.number <= {frames[-1]} && udp"
    assert run_filter(["frame.number == 1 && udp", "frame.number == 2 && tcp"], [1, 2]) == "frame.number in {1,2}"


@given(st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), st.sampled_from(["a", "b"]), st.sampled_from(["a", "b"])),
                max_size=40))
def test_every_event_is_in_exactly_one_run_in_order(rows: list[tuple[str, str, str]]) -> None:
    timeline = [ev(e, i + 1, host=h, src=h, dst=d) for i, (e, h, d) in enumerate(rows)]
    runs = collapse(timeline)
    members = sorted(m for r in runs for m in r["members"])
    assert members == list(range(len(timeline)))
    assert [r["index"] for r in runs] == sorted(r["index"] for r in runs)
    for r in runs:
        assert all(timeline[m]["event"] == r["event"] and timeline[m]["host"] == r["host"] for m in r["members"])


def test_wireshark_accepts_a_run_filter() -> None:
    tshark = need_tool("tshark")
    capture = SAMPLES / "p2-router" / "host-a-lo.pcap"
    flt = run_filter(["frame.number == 1 && icmp.type == 3 && icmp.code == 4",
                      "frame.number == 2 && icmp.type == 3 && icmp.code == 4"], [1, 2])
    out = subprocess.run([tshark, "-r", str(capture), "-Y", flt, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["1", "2"]
