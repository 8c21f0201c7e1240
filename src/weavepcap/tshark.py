"""tshark as an independent reference dissector: the packet-table columns as Wireshark dissects them."""

from __future__ import annotations

import bz2
import lzma
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from weavepcap.errors import CaptureError, WeavepcapError
from weavepcap.io.records import Damage
from weavepcap.schema import empty_columns
from weavepcap.settings import DEFAULT_SETTINGS, Settings

# Why `tshark -T fields` and not pyshark's packet objects: pyshark 0.6 in its normal (PDML) mode
# dissects ~800 frames/s here (measured on a 10 k-frame capture), `only_summaries` hangs with
# tshark 4.0 and `use_ek` breaks on the two Ethernet layers of every VXLAN frame. `-T fields` runs
# at tshark's own speed (~70 k frames/s) and streams, so memory stays bounded by one chunk. We still
# find tshark through pyshark, so a `config.ini` that points pyshark at a tshark binary applies here.

CHUNK_FRAMES = 65536  # rows per yielded chunk; memory is bounded by this, not by the capture

# Wireshark's WTAP_ENCAP_* numbers (frame.encap_type) -> the LINKTYPE_* numbers of the schema.
WTAP_TO_LINKTYPE: dict[int, int] = {1: 1, 7: 101, 15: 0, 25: 113, 39: 108, 129: 228, 130: 229, 210: 276}
LINK_HEADER_BYTES: dict[str, int] = {"eth": 14, "sll": 16, "null": 4, "raw": 0}

# One tshark field per entry; with `-E occurrence=a` every layer instance contributes one value,
# so the k-th value of `ip.src` belongs to the k-th `ip` token of frame.protocols.
FIELDS: tuple[str, ...] = (
    "frame.number", "frame.protocols", "frame.time_epoch", "frame.cap_len", "frame.len",
    "frame.encap_type", "frame.interface_id",
    "sll.pkttype", "sll.src.eth", "sll.etype", "sll.ltype",
    "eth.src", "eth.dst", "eth.type", "vlan.id", "vlan.etype",
    "ip.version", "ip.src", "ip.dst", "ip.hdr_len", "ip.len", "ip.id", "ip.flags.df", "ip.flags.mf",
    "ip.frag_offset", "ip.ttl", "ip.proto",
    "ipv6.src", "ipv6.dst", "ipv6.plen", "ipv6.hlim", "ipv6.nxt",
    "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.ident",
    "ipv6.hopopts.nxt", "ipv6.hopopts.len", "ipv6.dstopts.nxt", "ipv6.dstopts.len",
    "ipv6.routing.nxt", "ipv6.routing.len",
    "udp.srcport", "udp.dstport", "udp.length", "udp.checksum",
    "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.len",
    "icmp.type", "icmp.code", "icmp.mtu", "icmpv6.type", "icmpv6.code", "icmpv6.mtu",
    "vxlan.flags", "vxlan.vni", "geneve.vni", "geneve.options",
)
FIELD_INDEX: dict[str, int] = {name: i for i, name in enumerate(FIELDS)}
AGGREGATOR = ";"
IPV6_EXTENSIONS: dict[str, str] = {
    "ipv6.hopopts": "ipv6.hopopts", "ipv6.dstopts": "ipv6.dstopts", "ipv6.routing": "ipv6.routing",
    "ipv6.fraghdr": "ipv6.fraghdr",
}
TRANSPORTS = ("udp", "tcp", "icmp", "icmpv6")

# tshark 4.0 reads gzip and zstd itself but not these: we decompress and feed it on standard input.
FED_COMPRESSIONS: dict[bytes, Callable[[str], object]] = {
    b"BZh": lambda path: bz2.open(path, "rb"),
    b"\xfd7zXZ\x00": lambda path: lzma.open(path, "rb"),
}

# The columns tshark fills. The others (Weave payload fields, reassembly, class) are ours alone:
# tshark has no Weave dissector, so they stay at their missing values.
TSHARK_COLUMNS: tuple[str, ...] = (
    "frame", "ts_ns", "caplen", "wirelen", "linktype", "iface", "pkt_dir", "eth_src", "eth_dst", "vlan",
    "ethertype", "l3_off", "ip_version", "ip_src", "ip_dst", "ip_hdr_len", "ip_len", "ip_id", "ip_df",
    "ip_mf", "ip_frag_off", "ip_ttl", "ip_proto", "sport", "dport", "udp_len", "udp_csum", "tcp_flags",
    "tcp_seq", "tcp_ack", "l4_payload_len", "icmp_type", "icmp_code", "icmp_mtu", "q_ip_version",
    "q_ip_src", "q_ip_dst", "q_ip_len", "q_ip_id", "q_ip_df", "q_ip_proto", "q_sport", "q_dport",
    "q_vxlan_vni", "tun_type", "vxlan_flags", "vxlan_vni", "inner_len", "inner_eth_src", "inner_eth_dst",
    "inner_ethertype", "inner_zero_eth", "inner_ip_src", "inner_ip_dst", "inner_ip_proto",
)


def find_tshark() -> str:
    """The tshark binary pyshark would use; a one-line WeavepcapError when there is none."""
    from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path

    try:
        return str(get_process_path())
    except TSharkNotFoundException:
        raise WeavepcapError(
            "tshark not found: install the Debian package 'tshark' (or point pyshark's config.ini at it)"
        ) from None


def tshark_command(path: str, settings: Settings = DEFAULT_SETTINGS, tshark: str | None = None) -> list[str]:
    """The tshark command line behind iter_tshark_columns (also handy to reproduce a result by hand)."""
    decode_as: list[str] = []
    for port in sorted({settings.fastdp_port, *settings.vxlan_ports}):
        decode_as += ["-d", f"udp.port=={port},vxlan"]
    for port in sorted(settings.geneve_ports):
        decode_as += ["-d", f"udp.port=={port},geneve"]
    fields: list[str] = []
    for name in FIELDS:
        fields += ["-e", name]
    return [
        tshark or find_tshark(), "-r", path, "-n", "-T", "fields",
        "-E", "separator=/t", "-E", "occurrence=a", "-E", f"aggregator={AGGREGATOR}", "-E", "quote=n",
        # Per-frame fields, not reassembled datagrams: with defragmentation on, the LAST fragment
        # would carry the ports; ours (and the wire) put them in the first fragment.
        "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
        "-o", "tcp.desegment_tcp_streams:FALSE", "-o", "tcp.analyze_sequence_numbers:FALSE",
        *decode_as, *fields,
    ]


def iter_tshark_columns(
    path: str | Path,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    chunk_frames: int = CHUNK_FRAMES,
    damage: list[Damage] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Dissect a capture with tshark; yield column dicts (schema.PACKET_COLUMNS) of <= chunk_frames rows.

    Chunks, not one dict, so memory does not grow with the capture. Only TSHARK_COLUMNS are filled.
    tshark's complaints about a damaged file (e.g. a record cut short) are appended to `damage`;
    a file tshark cannot read at all raises CaptureError.
    """
    path = str(path)
    opener = _fed_compression(path)
    command = tshark_command("-" if opener else path, settings)
    feed_errors: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE if opener else None, stdout=subprocess.PIPE, stderr=stderr, text=True,
            bufsize=1 << 20,
        )
        assert process.stdout is not None
        feeder = None
        if opener is not None:
            feeder = threading.Thread(target=_feed, args=(opener, path, process, feed_errors), daemon=True)
            feeder.start()
        frames_seen = 0
        try:
            rows: list[list[str]] = []
            for line in process.stdout:
                rows.append(line.rstrip("\n").split("\t"))
                if len(rows) >= chunk_frames:
                    frames_seen += len(rows)
                    yield columns_from_rows(rows)
                    rows = []
            if rows:
                frames_seen += len(rows)
                yield columns_from_rows(rows)
        finally:
            if process.poll() is None:
                process.kill()
            returncode = process.wait()
            if feeder is not None:
                feeder.join(timeout=10)
        stderr.seek(0)
        complaints = feed_errors + [ln.strip() for ln in stderr if ln.strip() and not ln.startswith("Running as user")]
    if returncode != 0 or complaints:
        complaint = complaints[0] if complaints else f"exit status {returncode}"
        message = complaint if complaint.startswith("tshark:") else f"tshark: {complaint}"
        if frames_seen == 0 and (returncode != 0 or feed_errors):
            raise CaptureError(path, message)
        if damage is not None:
            damage.append(Damage(message=message, frame=frames_seen or None))


def _fed_compression(path: str) -> Callable[[str], object] | None:
    """The opener for a compression tshark cannot read itself (recognised by content), else None."""
    if path == "-":
        return None
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError:
        return None  # tshark reports a missing or unreadable file in its own words
    return next((opener for prefix, opener in FED_COMPRESSIONS.items() if magic.startswith(prefix)), None)


def _feed(opener: Callable[[str], object], path: str, process: subprocess.Popen[str], errors: list[str]) -> None:
    """Decompress `path` into tshark's standard input (runs in a thread)."""
    assert process.stdin is not None
    sink = process.stdin.buffer
    try:
        with opener(path) as source:  # type: ignore[attr-defined]
            while block := source.read(1 << 20):
                sink.write(block)
    except (BrokenPipeError, ValueError):
        pass  # tshark stopped reading (the consumer closed the iterator, or tshark failed)
    except (OSError, EOFError, lzma.LZMAError) as error:
        errors.append(f"decompression failed: {error}")
    finally:
        try:
            sink.close()
        except (BrokenPipeError, ValueError):
            pass


def columns_from_rows(rows: list[list[str]]) -> dict[str, np.ndarray]:
    """Turn tshark field rows into schema columns (the per-frame work of the reference dissector)."""
    columns = empty_columns(len(rows))
    for row_index, row in enumerate(rows):
        fill_row(columns, row_index, row)
    return columns


def _values(row: list[str], field: str) -> list[str]:
    index = FIELD_INDEX[field]
    text = row[index] if index < len(row) else ""
    return text.split(AGGREGATOR) if text else []


def _pick(row: list[str], field: str, occurrence: int) -> str | None:
    """The field's value in the `occurrence`-th layer instance of its protocol (None if absent)."""
    values = _values(row, field)
    return values[occurrence] if occurrence < len(values) and values[occurrence] != "" else None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text, 16) if text.startswith("0x") else int(text)


def _mac(text: str | None) -> int:
    return int(text.replace(":", ""), 16) if text else 0


def _ts_ns(text: str) -> int:
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


class _Layers:
    """frame.protocols as a list, with the occurrence number of each token within its protocol."""

    def __init__(self, protocols: str) -> None:
        self.tokens = protocols.split(":") if protocols else []
        seen: dict[str, int] = {}
        self.occurrence: list[int] = []
        for token in self.tokens:
            self.occurrence.append(seen.get(token, 0))
            seen[token] = seen.get(token, 0) + 1

    def find(self, names: tuple[str, ...], start: int = 0) -> int:
        for position in range(start, len(self.tokens)):
            if self.tokens[position] in names:
                return position
        return -1

    def after(self, position: int) -> int:
        """Position of the next protocol after `position`, skipping `ethertype` and IPv6 extension headers."""
        position += 1
        while position < len(self.tokens) and (
            self.tokens[position] == "ethertype" or self.tokens[position] in IPV6_EXTENSIONS
        ):
            position += 1
        return position if position < len(self.tokens) else -1


def fill_row(columns: dict[str, np.ndarray], i: int, row: list[str]) -> None:
    """Fill row i of `columns` from one tshark output line."""
    first = lambda field: _pick(row, field, 0)  # noqa: E731 - local shorthand
    columns["frame"][i] = int(row[0])
    layers = _Layers(row[FIELD_INDEX["frame.protocols"]])
    if (stamp := first("frame.time_epoch")) is not None:
        columns["ts_ns"][i] = _ts_ns(stamp)
    columns["caplen"][i] = _int(first("frame.cap_len")) or 0
    columns["wirelen"][i] = _int(first("frame.len")) or 0
    encap = _int(first("frame.encap_type"))
    columns["linktype"][i] = WTAP_TO_LINKTYPE.get(encap, -1) if encap is not None else -1
    columns["iface"][i] = _int(first("frame.interface_id")) or 0
    fill_link(columns, i, row, layers)

    ip_position = layers.find(("ip", "ipv6"))
    if ip_position < 0:
        return
    fill_ip(columns, i, row, layers, ip_position, quoted=False)
    transport = layers.after(ip_position)
    if transport < 0 or layers.tokens[transport] not in TRANSPORTS:
        return
    name, k = layers.tokens[transport], layers.occurrence[transport]
    if name in ("udp", "tcp"):
        fill_ports(columns, i, row, name, k, prefix="")
        if name == "udp":
            fill_tunnel(columns, i, row, layers, transport)
        return
    columns["icmp_type"][i] = _int(_pick(row, f"{name}.type", k)) or 0
    columns["icmp_code"][i] = _int(_pick(row, f"{name}.code", k)) or 0
    mtu = _int(_pick(row, f"{name}.mtu", k))
    if mtu is not None:
        columns["icmp_mtu"][i] = mtu
    quote = layers.after(transport)
    if quote >= 0 and layers.tokens[quote] in ("ip", "ipv6"):
        fill_ip(columns, i, row, layers, quote, quoted=True)
        quoted_l4 = layers.after(quote)
        if quoted_l4 >= 0 and layers.tokens[quoted_l4] in ("udp", "tcp"):
            name, k = layers.tokens[quoted_l4], layers.occurrence[quoted_l4]
            fill_ports(columns, i, row, name, k, prefix="q_")
            tunnel = layers.after(quoted_l4)
            if tunnel >= 0 and layers.tokens[tunnel] == "vxlan":
                vni = _int(_pick(row, "vxlan.vni", layers.occurrence[tunnel]))
                if vni is not None:
                    columns["q_vxlan_vni"][i] = vni


def fill_link(columns: dict[str, np.ndarray], i: int, row: list[str], layers: _Layers) -> None:
    """Link-level columns: MACs, SLL packet type, outer VLAN tags, ethertype and the L3 offset."""
    if not layers.tokens:
        return
    link = layers.tokens[0]
    offset = LINK_HEADER_BYTES.get(link)
    if link == "eth":
        columns["eth_src"][i] = _mac(_pick(row, "eth.src", 0))
        columns["eth_dst"][i] = _mac(_pick(row, "eth.dst", 0))
        ethertype = _int(_pick(row, "eth.type", 0))
        outer_vlans = 0
        position = 1
        while position < len(layers.tokens) and layers.tokens[position] in ("ethertype", "vlan"):
            outer_vlans += layers.tokens[position] == "vlan"
            position += 1
        if outer_vlans:
            columns["vlan"][i] = _int(_pick(row, "vlan.id", 0)) or 0
            ethertype = _int(_pick(row, "vlan.etype", outer_vlans - 1))
            offset = 14 + 4 * outer_vlans
        if ethertype is not None:
            columns["ethertype"][i] = ethertype
    elif link == "sll":
        pkttype = _int(_pick(row, "sll.pkttype", 0))
        if pkttype is not None:
            columns["pkt_dir"][i] = pkttype
        columns["eth_src"][i] = _mac(_pick(row, "sll.src.eth", 0))
        ethertype = _int(_pick(row, "sll.etype", 0))
        if ethertype is None:
            ethertype = _int(_pick(row, "sll.ltype", 0))
        if ethertype is not None:
            columns["ethertype"][i] = ethertype
        # SLL2 (LINKTYPE 276) has a 20-byte header; tshark calls both versions `sll`.
        offset = 20 if columns["linktype"][i] == 276 else 16
    if offset is not None and len(layers.tokens) > 1:
        columns["l3_off"][i] = offset


def fill_ip(
    columns: dict[str, np.ndarray], i: int, row: list[str], layers: _Layers, position: int, *, quoted: bool
) -> None:
    """IP columns from the layer at `position` (outer IP, or the packet quoted in an ICMP error)."""
    p = "q_" if quoted else ""
    k = layers.occurrence[position]
    if layers.tokens[position] == "ip":
        columns[f"{p}ip_version"][i] = 4
        columns[f"{p}ip_src"][i] = _pick(row, "ip.src", k) or ""
        columns[f"{p}ip_dst"][i] = _pick(row, "ip.dst", k) or ""
        for column, field in (("ip_len", "ip.len"), ("ip_id", "ip.id"), ("ip_proto", "ip.proto")):
            value = _int(_pick(row, field, k))
            if value is not None:
                columns[f"{p}{column}"][i] = value
        columns[f"{p}ip_df"][i] = _pick(row, "ip.flags.df", k) in ("1", "True")
        if quoted:
            return
        columns["ip_mf"][i] = _pick(row, "ip.flags.mf", k) in ("1", "True")
        for column, field in (("ip_hdr_len", "ip.hdr_len"), ("ip_ttl", "ip.ttl")):
            value = _int(_pick(row, field, k))
            if value is not None:
                columns[column][i] = value
        offset = _int(_pick(row, "ip.frag_offset", k))
        if offset is not None:
            columns["ip_frag_off"][i] = offset * 8  # tshark 4.0 shows 8-byte units
        return
    columns[f"{p}ip_version"][i] = 6
    columns[f"{p}ip_src"][i] = _pick(row, "ipv6.src", k) or ""
    columns[f"{p}ip_dst"][i] = _pick(row, "ipv6.dst", k) or ""
    payload = _int(_pick(row, "ipv6.plen", k))
    if payload is not None:
        columns[f"{p}ip_len"][i] = payload + 40
    proto, header_len, fragment = _ipv6_upper_layer(row, layers, position)
    if fragment is not None:
        ident = _int(_pick(row, "ipv6.fraghdr.ident", fragment))
        if ident is not None:
            columns[f"{p}ip_id"][i] = ident
        if not quoted:
            columns["ip_mf"][i] = _pick(row, "ipv6.fraghdr.more", fragment) in ("1", "True")
            columns["ip_frag_off"][i] = (_int(_pick(row, "ipv6.fraghdr.offset", fragment)) or 0) * 8
    if proto is not None:
        columns[f"{p}ip_proto"][i] = proto
    if not quoted:
        columns["ip_hdr_len"][i] = header_len
        if columns["ip_frag_off"][i] < 0:
            columns["ip_frag_off"][i] = 0
        hop_limit = _int(_pick(row, "ipv6.hlim", k))
        if hop_limit is not None:
            columns["ip_ttl"][i] = hop_limit


def _ipv6_upper_layer(row: list[str], layers: _Layers, position: int) -> tuple[int | None, int, int | None]:
    """Upper-layer protocol, header length incl. extension headers, and the fragment header's occurrence.

    Walks the extension-header tokens that follow the IPv6 layer at `position`.
    """
    proto = _int(_pick(row, "ipv6.nxt", layers.occurrence[position]))
    header_len, fragment = 40, None
    position += 1
    while position < len(layers.tokens) and layers.tokens[position] in IPV6_EXTENSIONS:
        ext, ext_k = layers.tokens[position], layers.occurrence[position]
        proto = _int(_pick(row, f"{ext}.nxt", ext_k))
        if ext == "ipv6.fraghdr":
            header_len += 8
            fragment = ext_k
        else:
            header_len += ((_int(_pick(row, f"{ext}.len", ext_k)) or 0) + 1) * 8
        position += 1
    return proto, header_len, fragment


def fill_ports(columns: dict[str, np.ndarray], i: int, row: list[str], name: str, k: int, *, prefix: str) -> None:
    """Ports (and, for the outer layer, the other UDP/TCP header fields) of the k-th `name` layer."""
    for column, field in (("sport", f"{name}.srcport"), ("dport", f"{name}.dstport")):
        value = _int(_pick(row, field, k))
        if value is not None:
            columns[f"{prefix}{column}"][i] = value
    if prefix:
        return
    if name == "udp":
        length = _int(_pick(row, "udp.length", k))
        if length is not None:
            columns["udp_len"][i] = length
            columns["l4_payload_len"][i] = length - 8
        checksum = _int(_pick(row, "udp.checksum", k))
        if checksum is not None:
            columns["udp_csum"][i] = checksum
        return
    for column, field in (("tcp_seq", "tcp.seq_raw"), ("tcp_ack", "tcp.ack_raw"), ("l4_payload_len", "tcp.len")):
        value = _int(_pick(row, field, k))
        if value is not None:
            columns[column][i] = value
    flags = _int(_pick(row, "tcp.flags", k))
    if flags is not None:
        columns["tcp_flags"][i] = flags & 0xFF  # the schema keeps the classic flags byte


def fill_tunnel(columns: dict[str, np.ndarray], i: int, row: list[str], layers: _Layers, udp_position: int) -> None:
    """VXLAN / Geneve header and the encapsulated frame's Ethernet and IP fields."""
    tunnel = layers.after(udp_position)
    if tunnel < 0 or layers.tokens[tunnel] not in ("vxlan", "geneve"):
        return
    name, k = layers.tokens[tunnel], layers.occurrence[tunnel]
    columns["tun_type"][i] = 1 if name == "vxlan" else 2
    vni = _int(_pick(row, f"{name}.vni", k))
    if vni is not None:
        columns["vxlan_vni"][i] = vni
    tunnel_header = 8
    if name == "vxlan":
        flags = _int(_pick(row, "vxlan.flags", k))
        if flags is not None:
            columns["vxlan_flags"][i] = flags >> 8  # tshark shows the first two header bytes
    else:
        tunnel_header += len(_pick(row, "geneve.options", k) or "") // 2  # hex digits -> option bytes
    if columns["udp_len"][i] >= 8 + tunnel_header:
        columns["inner_len"][i] = columns["udp_len"][i] - 8 - tunnel_header
    inner = layers.after(tunnel)
    if inner < 0 or layers.tokens[inner] != "eth":
        return
    k = layers.occurrence[inner]
    src, dst = _mac(_pick(row, "eth.src", k)), _mac(_pick(row, "eth.dst", k))
    columns["inner_eth_src"][i], columns["inner_eth_dst"][i] = src, dst
    ethertype = _int(_pick(row, "eth.type", k))
    if ethertype is not None:
        columns["inner_ethertype"][i] = ethertype
    columns["inner_zero_eth"][i] = src == 0 and dst == 0 and ethertype == 0
    inner_ip = layers.after(inner)
    if inner_ip < 0 or layers.tokens[inner_ip] not in ("ip", "ipv6"):
        return
    family, k = layers.tokens[inner_ip], layers.occurrence[inner_ip]
    columns["inner_ip_src"][i] = _pick(row, f"{family}.src", k) or ""
    columns["inner_ip_dst"][i] = _pick(row, f"{family}.dst", k) or ""
    proto = _int(_pick(row, "ip.proto", k)) if family == "ip" else _ipv6_upper_layer(row, layers, inner_ip)[0]
    if proto is not None:
        columns["inner_ip_proto"][i] = proto
