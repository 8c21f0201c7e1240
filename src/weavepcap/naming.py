"""Host names for captures: from HOST=PATH, pcapng metadata, or the file name — one policy for every command."""

from __future__ import annotations

import re

from weavepcap.io.records import CaptureInfo, CaptureSpec

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
CAPTURE_SUFFIXES = (".pcapng", ".pcap", ".cap")
# A host named after its capture file loses the interface part: host-a-eth0.pcap and host-a-lo.pcap
# are both captures of host-a.
INTERFACE_SUFFIX = re.compile(r"[-_.](lo|any|eth\d+|en[a-z0-9]+|wl[a-z0-9]+|bond\d+|br\d+|veth[a-z0-9]*|weave)$")
# What a name taken from the wire (a Weave NickName) must look like to become a host's name.
SAFE_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def file_stem(name: str) -> str:
    """The file name without its compression and capture extensions."""
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    for suffix in CAPTURE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def host_from_file_name(name: str) -> str:
    stripped = INTERFACE_SUFFIX.sub("", name)
    return stripped or name


def capture_host(spec: CaptureSpec, info: CaptureInfo) -> str:
    """The spec's host, else the reader's (pcapng metadata), else the file name without its extensions."""
    if spec.host:
        return spec.host
    if info.host:
        return info.host
    return file_stem(info.name) or info.name
