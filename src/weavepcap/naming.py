"""Host names for captures: from HOST=PATH, pcapng metadata, or the file name — one policy for every command."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath

from weavepcap.io.records import CaptureInfo, CaptureSpec

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
CAPTURE_SUFFIXES = (".pcapng", ".pcap", ".cap")
# Interface names as Linux spells them (classic, systemd-predictable, container and overlay devices).
# A file named after a host and an interface (host-a-eth0.pcap, hostB-eth0-clock-1.750s.pcap) is a
# capture of that host: the interface and whatever follows it are not part of the host's name.
INTERFACE = (r"lo|any|eth\d+|en[osp]\d+\w*|enx[0-9a-f]{12}|wlan\d+|wl[osp]\d+\w*|bond\d+|br\d+|br-[0-9a-f]+"
             r"|veth\w*|vlan\d+|tun\d+|tap\d+|docker\d+|cni\d+|flannel\.\d+|cali[0-9a-f]+|cilium_\w+"
             r"|vxlan[-_.]?\w*|weave|datapath|vethwe-\w+")
SEPARATORS = "-_."
INTERFACE_TOKEN = re.compile(rf"[{SEPARATORS}](?P<iface>{INTERFACE})(?=$|[{SEPARATORS}])")
# What a name taken from the wire (a Weave NickName) must look like to become a host's name.
SAFE_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

BY_COMMAND_LINE = "HOST= on the command line"
BY_METADATA = "pcapng metadata (a host= comment)"
BY_FILE_NAME = "the file name"


@dataclass(frozen=True)
class HostName:
    """A capture's host and the rule that named it (shown in classify and analyze output)."""

    host: str
    named_by: str


def file_stem(name: str) -> str:
    """The file name without directories and its compression and capture extensions."""
    name = PurePath(name).name if name not in ("", "-", "<stdin>") else name
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    for suffix in CAPTURE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def host_in_file_name(stem: str) -> HostName:
    """The host part of one file stem: what comes before the first interface name, else the stem."""
    found = INTERFACE_TOKEN.search(stem)
    if found and found.start() > 0:
        rest = stem[found.end():]
        after = f" and the suffix {rest!r} after it" if rest else ""
        return HostName(stem[: found.start()], f"{BY_FILE_NAME}, without the interface {found['iface']!r}{after}")
    return HostName(stem or "capture", BY_FILE_NAME)


def host_from_file_name(name: str) -> str:
    """`host-a-eth0` → `host-a`; `hostB-eth0-clock-1.750s` → `hostB`; a name with no interface unchanged."""
    return host_in_file_name(name).host


def _shared_suffix(stems: Sequence[str]) -> str:
    """The longest suffix, starting at a separator, that every stem shares and none is made only of."""
    shortest = min(stems, key=len)
    best = ""
    for i, char in enumerate(shortest):
        if char not in SEPARATORS or i == 0:
            continue
        suffix = shortest[i:]
        if all(s.endswith(suffix) and len(s) > len(suffix) for s in stems):
            best = suffix
            break  # the first separator from the left gives the longest shared suffix
    return best


def infer_file_hosts(specs: Sequence[CaptureSpec]) -> list[CaptureSpec]:
    """Specs whose host will come from the file name get a `file_host` chosen with their siblings in view.

    Each file's host is the part before an interface name (host-a-eth0 → host-a). Captures with no
    interface in their names that all end in the same suffix (`-clock-1.750s`, `_capture`) lose it,
    as long as the names left are different and not empty: `a-capture.pcap b-capture.pcap` are hosts
    `a` and `b`, while a single `a-capture.pcap` stays `a-capture`.
    """
    named = [host_in_file_name(file_stem(s.path)) if s.host is None and s.path != "-" else None for s in specs]
    plain = [i for i, n in enumerate(named) if n is not None and n.named_by == BY_FILE_NAME]
    stems = [named[i].host for i in plain]  # type: ignore[union-attr]  # plain holds only set names
    suffix = _shared_suffix(stems) if len(stems) >= 2 else ""
    if suffix:
        left = [s.removesuffix(suffix) for s in stems]
        if len(set(left)) == len(left) and all(left):
            for i, host in zip(plain, left, strict=True):
                named[i] = HostName(host, f"{BY_FILE_NAME}, without the suffix {suffix!r} all {len(stems)} "
                                          "such captures share")
    return [replace(s, file_host=n.host, file_host_named_by=n.named_by) if n is not None else s
            for s, n in zip(specs, named, strict=True)]


def host_naming(spec: CaptureSpec, info: CaptureInfo) -> HostName:
    """The spec's host, else the reader's (pcapng metadata), else the file name's host part."""
    if spec.host:
        return HostName(spec.host, BY_COMMAND_LINE)
    if info.host:
        return HostName(info.host, BY_METADATA)
    if spec.file_host:
        return HostName(spec.file_host, spec.file_host_named_by or BY_FILE_NAME)
    if info.name in ("", "<stdin>"):
        return HostName(info.name or "capture", BY_FILE_NAME)
    return host_in_file_name(file_stem(info.name))


def capture_host(spec: CaptureSpec, info: CaptureInfo) -> str:
    """The host name `host_naming` gives (the one policy every command uses)."""
    return host_naming(spec, info).host
