"""Addresses, protocols, ports and ICMP fields agree with dpkt, an independent dissector, on every capture."""

from __future__ import annotations

import socket
from pathlib import Path

import dpkt
import dpkt.sll
import dpkt.sll2
import pytest

from tests.conftest import real_captures
from tests.test_decode_equivalence import _sample_paths, read_chunk
from weavepcap.decode import DecodeState, decode_chunk
from weavepcap.settings import Settings


def _network_layer(buf: bytes, linktype: int) -> dpkt.Packet | None:
    if linktype == 1:
        layer = dpkt.ethernet.Ethernet(buf).data
    elif linktype == 113:
        layer = dpkt.sll.SLL(buf).data
    elif linktype == 276:
        layer = dpkt.sll2.SLL2(buf).data
    elif linktype == 101 and buf:
        layer = dpkt.ip.IP(buf) if buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
    else:
        return None
    return layer if isinstance(layer, dpkt.ip.IP | dpkt.ip6.IP6) else None


def _text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


@pytest.mark.parametrize("path", real_captures() + _sample_paths(), ids=lambda p: p.name)
def test_agrees_with_dpkt(path: Path) -> None:
    chunk = read_chunk(path)
    c = decode_chunk(chunk, Settings(), DecodeState()).columns
    compared = 0
    for i in range(len(chunk)):
        buf = chunk.frame_bytes(i)
        if chunk.caplen[i] < chunk.wirelen[i]:
            continue  # dpkt fills what a cut frame lacks differently; the snaplen tests cover those
        try:
            ip = _network_layer(buf, int(chunk.linktype[i]))
        except (dpkt.UnpackError, dpkt.NeedData):
            continue
        if ip is None:
            continue
        frame = int(chunk.frame[i])
        compared += 1
        assert c["ip_src"][i] == _text(ip.src) and c["ip_dst"][i] == _text(ip.dst), frame
        assert c["ip_version"][i] == (4 if isinstance(ip, dpkt.ip.IP) else 6), frame
        fragment = isinstance(ip, dpkt.ip.IP) and (ip.mf or ip.offset)
        if isinstance(ip, dpkt.ip.IP):
            assert (c["ip_id"][i], c["ip_ttl"][i], c["ip_len"][i], c["ip_df"][i]) == (
                ip.id,
                ip.ttl,
                ip.len,
                bool(ip.df),
            ), frame
            assert c["ip_proto"][i] == ip.p, frame
        l4 = ip.data
        if not fragment and isinstance(l4, dpkt.udp.UDP | dpkt.tcp.TCP):
            assert (c["sport"][i], c["dport"][i]) == (l4.sport, l4.dport), frame
        if not fragment and isinstance(l4, dpkt.icmp.ICMP | dpkt.icmp6.ICMP6):
            assert (c["icmp_type"][i], c["icmp_code"][i]) == (l4.type, l4.code), frame
    assert compared > 0 or bool((chunk.caplen < chunk.wirelen).all())
