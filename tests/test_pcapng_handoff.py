"""The Wireshark hand-off: every finding's evidence frames (and context) in one commented pcapng, read back."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLES, need_tool

import weavepcap
from weavepcap.errors import CaptureError
from weavepcap.io import open_capture
from weavepcap.io.records import CaptureSpec
from weavepcap.report.pcapngreport import write_evidence_pcapng

P2 = SAMPLES / "p2-router"
ARGS = ["host-a=host-a-eth0.pcap", "host-a=host-a-lo.pcap", "host-b=host-b-eth0.pcap", "host-b=host-b-lo.pcap"]
CONTEXT = 2
SEP = "\x1f"


@functools.cache
def analysis() -> dict:
    specs = [CaptureSpec(path=str(P2 / CaptureSpec.parse(a).path), host=CaptureSpec.parse(a).host) for a in ARGS]
    return weavepcap.analyze(specs).to_dict()


def frames_of(path: Path) -> list[bytes]:
    with open_capture(CaptureSpec(path=str(path))) as capture:
        return [chunk.frame_bytes(i) for chunk in capture.chunks() for i in range(len(chunk))]


def test_every_evidence_frame_is_written_once_with_its_original_bytes(tmp_path: Path) -> None:
    doc = analysis()
    result = write_evidence_pcapng(doc, tmp_path / "ev.pcapng")
    cited = {(e["capture"], e["frame"]) for f in doc["findings"] for e in f["evidence"]}
    assert result.frames == len(cited) and result.evidence_frames == len(cited) and not result.missing
    written = frames_of(result.path)
    originals = {name: frames_of(P2 / name) for name in {c for c, _ in cited}}
    assert sorted(written) == sorted(originals[c][f - 1] for c, f in cited)


def test_tshark_reads_every_comment_and_frame(tmp_path: Path) -> None:
    tshark = need_tool("tshark")
    doc = analysis()
    result = write_evidence_pcapng(doc, tmp_path / "ev.pcapng", context=CONTEXT)
    out = subprocess.run(
        [tshark, "-r", str(result.path), "-Y", "frame.comment", "-T", "fields", "-e", "frame.number",
         "-e", "frame.interface_name", "-e", "frame.comment", "-E", "occurrence=a", "-E", f"aggregator={SEP}"],
        capture_output=True, text=True, timeout=60, check=True)
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert len(rows) == result.frames  # every packet carries at least one comment
    comments = {(iface, c) for _, iface, cs in rows for c in cs.split(SEP)}
    for rank, finding in enumerate(doc["findings"], 1):
        for k, e in enumerate(finding["evidence"], 1):
            tag = f"weavepcap evidence {k}/{len(finding['evidence'])} of finding {rank} {finding['rule']}"
            hits = [c for iface, c in comments if iface == e["capture"] and c.startswith(tag)
                    and c.endswith(f"| host {e['host']}, {e['capture']} frame {e['frame']}")]
            assert len(hits) == 1, (tag, e)
    context = [c for _, c in comments if c.startswith("weavepcap context")]
    assert context, "context frames were asked for"
    assert all(" frame(s) before evidence " in c or " frame(s) after evidence " in c for c in context)


def test_context_frames_surround_the_evidence(tmp_path: Path) -> None:
    doc = analysis()
    plain = write_evidence_pcapng(doc, tmp_path / "a.pcapng")
    wide = write_evidence_pcapng(doc, tmp_path / "b.pcapng", context=CONTEXT)
    assert wide.evidence_frames == plain.evidence_frames < wide.frames
    with pytest.raises(ValueError):
        write_evidence_pcapng(doc, tmp_path / "c.pcapng", context=-1)


def test_a_missing_source_capture_is_a_one_line_error(tmp_path: Path) -> None:
    doc = dict(analysis())
    doc["captures"] = [{**c, "path": Path(c["path"]).name} for c in doc["captures"]]  # relative to base_dir
    assert write_evidence_pcapng(doc, tmp_path / "ok.pcapng", base_dir=P2).frames
    with pytest.raises(CaptureError) as err:
        write_evidence_pcapng(doc, tmp_path / "ev.pcapng", base_dir=tmp_path / "nowhere")
    assert "\n" not in str(err.value) and "host-a" in str(err.value)
