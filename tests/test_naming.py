"""Host names from file names: the lab's naming patterns, siblings' shared suffixes, and which rule named a host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weavepcap.io.records import CaptureInfo, CaptureSpec
from weavepcap.naming import (
    BY_COMMAND_LINE,
    BY_FILE_NAME,
    BY_METADATA,
    HostName,
    file_stem,
    host_from_file_name,
    host_naming,
    infer_file_hosts,
)


@pytest.mark.parametrize(("name", "host"), [
    ("host-a-eth0", "host-a"), ("host-a-lo", "host-a"), ("node1_ens3", "node1"),
    ("hostB-eth0-clock-1.750s", "hostB"),  # the lab's clock-shifted captures
    ("node-2.enp0s3.2026-12-05", "node-2"), ("k8s-w1-any", "k8s-w1"), ("w3-flannel.1", "w3"),
    ("router-left", "router-left"), ("router-right", "router-right"),
    ("lo", "lo"), ("capture", "capture"), ("eth0", "eth0"),
    ("london-ops", "london-ops"),  # "lo" inside a word is not an interface
    ("enemy-host", "enemy-host"), ("host-en", "host-en"),
])
def test_host_part_of_one_file_name(name: str, host: str) -> None:
    assert host_from_file_name(name) == host


def test_file_stem_drops_directories_and_every_extension() -> None:
    assert file_stem("/x/y/hostB-eth0-clock-1.750s.pcap.gz") == "hostB-eth0-clock-1.750s"
    assert file_stem("a.pcapng.zst") == "a"
    assert file_stem("-") == "-"


def names(*paths: str) -> list[str | None]:
    return [s.file_host for s in infer_file_hosts([CaptureSpec.parse(p) for p in paths])]


def test_siblings_with_a_shared_suffix_lose_it() -> None:
    assert names("a-capture.pcap", "b-capture.pcap") == ["a", "b"]
    assert names("web.example.com.pcap", "db.example.com.pcap") == ["web", "db"]


def test_a_single_file_or_siblings_without_a_shared_suffix_keep_their_names() -> None:
    assert names("a-capture.pcap") == ["a-capture"]
    assert names("capture.pcap", "b-capture.pcap") == ["capture", "b-capture"]  # "" is no host: kept
    assert names("x-a-capture.pcap", "a-capture.pcap") == ["x-a", "a"]
    assert names("router-left.pcap", "router-right.pcap") == ["router-left", "router-right"]


def test_lab_sample_set_names_hosts_and_routers() -> None:
    got = names("host-a-eth0.pcap", "host-a-lo.pcap", "host-b-eth0.pcap", "host-b-lo.pcap",
                "router-left.pcap", "router-right.pcap")
    assert got == ["host-a", "host-a", "host-b", "host-b", "router-left", "router-right"]


def test_clock_shifted_pair_is_two_hosts() -> None:
    assert names("hostA-eth0.pcap", "hostB-eth0-clock-1.750s.pcap") == ["hostA", "hostB"]


def test_host_given_on_the_command_line_is_not_inferred() -> None:
    specs = infer_file_hosts([CaptureSpec.parse("east=a-capture.pcap"), CaptureSpec.parse("b-capture.pcap")])
    assert specs[0].file_host is None and specs[1].file_host == "b-capture"


def info(name: str, host: str | None = None) -> CaptureInfo:
    return CaptureInfo(path=name, name=name, host=host)


def test_named_by_says_which_rule_named_the_host() -> None:
    spec = CaptureSpec.parse("east=x.pcap")
    assert host_naming(spec, info("x.pcap", "east")).named_by == BY_COMMAND_LINE
    assert host_naming(CaptureSpec.parse("x.pcapng"), info("x.pcapng", "node7")) == HostName("node7", BY_METADATA)
    plain = host_naming(CaptureSpec.parse("capture.pcap"), info("capture.pcap"))
    assert plain.host == "capture" and plain.named_by == BY_FILE_NAME
    shifted = host_naming(CaptureSpec.parse("hostB-eth0-clock-1.750s.pcap"), info("hostB-eth0-clock-1.750s.pcap"))
    assert shifted.host == "hostB"
    assert "'eth0'" in shifted.named_by and "'-clock-1.750s'" in shifted.named_by
    (inferred,) = infer_file_hosts([CaptureSpec.parse("a-capture.pcap"), CaptureSpec.parse("b-capture.pcap")])[:1]
    got = host_naming(inferred, info("a-capture.pcap"))
    assert got.host == "a" and "'-capture'" in got.named_by and "2" in got.named_by


def test_stdin_is_named_without_a_file() -> None:
    assert host_naming(CaptureSpec.parse("-"), info("<stdin>")).host == "<stdin>"


def test_analyze_names_hosts_from_lab_file_names_and_says_how(tmp_path: Path) -> None:
    import weavepcap

    sample = Path(__file__).resolve().parent.parent / "samples" / "p2-router"
    a = tmp_path / "hostA-eth0.pcap"
    b = tmp_path / "hostB-eth0-clock-1.750s.pcap"
    a.write_bytes((sample / "host-a-eth0.pcap").read_bytes())
    b.write_bytes((sample / "host-b-eth0.pcap").read_bytes())
    doc = weavepcap.analyze([str(a), str(b)]).to_dict()
    hosts = {h["name"]: h["named_by"] for h in doc["hosts"] if h["captures"]}
    assert set(hosts) == {"hostA", "hostB"}
    assert "'eth0'" in hosts["hostB"] and "'-clock-1.750s'" in hosts["hostB"]
    assert {c["host"] for c in doc["captures"]} == {"hostA", "hostB"}


def test_classify_json_says_who_named_the_host(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from weavepcap.cli import app

    sample = Path(__file__).resolve().parent.parent / "samples" / "p2-router"
    out = CliRunner().invoke(app, ["classify", "--format", "json", str(sample / "host-a-lo.pcap"),
                                   f"node9={sample / 'host-b-lo.pcap'}"])
    assert out.exit_code == 0, out.output
    captures = json.loads(out.stdout)["captures"]
    assert [(c["host"], c["named_by"]) for c in captures] == [
        ("host-a", "the file name, without the interface 'lo'"), ("node9", BY_COMMAND_LINE)]
