"""Vectorised decoder: the common frame shapes of a whole chunk at once, by numpy gathers at fixed offsets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.decode.constants import (
    AF_IPV4,
    AF_IPV6,
    COUNTER_MASK,
    ETH_IPV4,
    ETH_IPV6,
    ETH_TEB,
    ICMP4_ERROR_TYPES,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LT_ETHERNET,
    LT_IPV4,
    LT_IPV6,
    LT_LOOP,
    LT_NULL,
    LT_RAW,
    LT_SLL,
    LT_SLL2,
    TUN_GENEVE,
    TUN_VXLAN,
    TUNNEL_PROTOS,
    VLAN_TPIDS,
)
from weavepcap.io.records import FrameChunk
from weavepcap.settings import Settings

Cols = dict[str, np.ndarray]
_SPAN = {w: np.arange(w, dtype=np.int64) for w in (1, 2, 4, 6, 8, 14, 20)}
_VLAN = np.array(VLAN_TPIDS, dtype=np.int64)
_PAD = 64  # gathers of rows whose field is absent read from offset 0 instead; keep that many bytes there


def _take(data: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """Big-endian unsigned integers of `width` bytes at absolute positions pos (int64; uint64 for 8)."""
    if pos.size == 0:
        return np.zeros(0, dtype=np.uint64 if width == 8 else np.int64)
    if width == 1:
        return data[pos].astype(np.int64)
    grid = data[pos[:, None] + _SPAN[width]]
    if width == 2:
        return grid.view(">u2")[:, 0].astype(np.int64)
    if width == 4:
        return grid.view(">u4")[:, 0].astype(np.int64)
    if width == 6:
        wide = np.zeros((pos.size, 8), dtype=np.uint8)
        wide[:, 2:] = grid
        return wide.view(">u8")[:, 0].astype(np.int64)
    if width == 8:
        return grid.view(">u8")[:, 0].astype(np.uint64)
    raise ValueError(width)


def _take_if(data: np.ndarray, pos: np.ndarray, width: int, ok: np.ndarray, missing: int) -> np.ndarray:
    """Like _take, but rows where ok is False read nothing and get `missing`."""
    values = _take(data, np.where(ok, pos, 0), width)
    if width == 8:
        return np.where(ok, values, np.uint64(missing))
    return np.where(ok, values, missing)


def ipv4_texts(values: np.ndarray) -> np.ndarray:
    """Dotted-quad text for 32-bit addresses, formatting each distinct address once."""
    out = np.empty(values.size, dtype=object)
    if values.size == 0:
        return out
    codes, uniques = pd.factorize(values)
    u = np.asarray(uniques, dtype=np.int64)
    texts = np.array(
        [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in u.tolist()], dtype=object
    )
    out[:] = texts[codes]
    return out


class _Text:
    """IPv4 text columns gathered as integers during the pass and formatted together at the end."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, np.ndarray, np.ndarray]] = []

    def add(self, column: str, rows: np.ndarray, values: np.ndarray) -> None:
        if rows.size:
            self.parts.append((column, rows, values))

    def flush(self, cols: Cols) -> None:
        if not self.parts:
            return
        texts = ipv4_texts(np.concatenate([values for _, _, values in self.parts]))
        at = 0
        for column, rows, values in self.parts:
            cols[column][rows] = texts[at : at + values.size]
            at += values.size


class FastDecoder:
    """Decodes every frame it can by vectorised gathers and reports the rows it leaves to the per-packet path."""

    def __init__(self, settings: Settings) -> None:
        self.weave_port = settings.weave_port
        self.fastdp_port = settings.fastdp_port
        self.vxlan_ports = np.array(
            sorted(set(settings.vxlan_ports) | {settings.fastdp_port}), dtype=np.int64
        )
        self.geneve_ports = np.array(sorted(settings.geneve_ports), dtype=np.int64)

    def decode(self, chunk: FrameChunk, cols: Cols) -> np.ndarray:
        """Fill cols for the rows this path handles; return a bool mask of rows for the per-packet path."""
        n = len(chunk)
        slow = np.zeros(n, dtype=bool)
        if n == 0:
            return slow
        data = chunk.data
        if data.size < _PAD:
            data = np.concatenate([data, np.zeros(_PAD, dtype=np.uint8)])
        self.data = data
        self.start = chunk.offsets.astype(np.int64)
        self.cap = chunk.caplen.astype(np.int64)
        self.cols = cols
        self.slow = slow
        self.text = _Text()
        l3 = np.full(n, -1, dtype=np.int64)
        ethertype = np.full(n, -1, dtype=np.int64)
        self._link(chunk.linktype.astype(np.int64), l3, ethertype)
        slow[(l3 >= 0) & (ethertype == ETH_IPV6)] = True  # IPv6 always needs the extension-header walk
        v4 = np.flatnonzero((l3 >= 0) & (ethertype == ETH_IPV4) & ~slow)
        self._ipv4(v4, l3[v4])
        self.text.flush(cols)
        return slow

    # --- link layer -------------------------------------------------------------------------------

    def _link(self, lt: np.ndarray, l3: np.ndarray, ethertype: np.ndarray) -> None:
        data, start, cap, cols = self.data, self.start, self.cap, self.cols
        # Ethernet with up to two tags; a third tag or a tag cut short goes to the per-packet path
        e = np.flatnonzero((lt == LT_ETHERNET) & (cap >= 14))
        if e.size:
            b, c = start[e], cap[e]
            etype = _take(data, b + 12, 2)
            vlan = np.full(e.size, -1, dtype=np.int64)
            off = np.full(e.size, 14, dtype=np.int64)
            tag1 = np.isin(etype, _VLAN)
            ok1 = tag1 & (c >= 18)
            vlan = np.where(ok1, _take_if(data, b + 14, 2, ok1, 0) & 0xFFF, vlan)
            etype = np.where(ok1, _take_if(data, b + 16, 2, ok1, 0), etype)
            off[ok1] = 18
            tag2 = ok1 & np.isin(etype, _VLAN)
            ok2 = tag2 & (c >= 22)
            etype = np.where(ok2, _take_if(data, b + 20, 2, ok2, 0), etype)
            off[ok2] = 22
            bad = (tag1 & ~ok1) | (tag2 & ~ok2) | (ok2 & np.isin(etype, _VLAN))
            self.slow[e[bad]] = True
            good = ~bad
            rows, b = e[good], b[good]
            cols["eth_dst"][rows] = _take(data, b, 6).astype(np.uint64)
            cols["eth_src"][rows] = _take(data, b + 6, 6).astype(np.uint64)
            cols["vlan"][rows] = vlan[good]
            l3[rows] = off[good]
            ethertype[rows] = etype[good]
        s = np.flatnonzero((lt == LT_SLL) & (cap >= 16))
        if s.size:
            b = start[s]
            direction = _take(data, b, 2)
            cols["pkt_dir"][s] = np.where(direction <= 127, direction, -1)
            has_mac = _take(data, b + 4, 2) == 6
            cols["eth_src"][s] = np.where(has_mac, _take(data, b + 6, 6), 0).astype(np.uint64)
            l3[s] = 16
            ethertype[s] = _take(data, b + 14, 2)
        s2 = np.flatnonzero((lt == LT_SLL2) & (cap >= 20))
        if s2.size:
            b = start[s2]
            direction = _take(data, b + 10, 1)
            cols["pkt_dir"][s2] = np.where(direction <= 127, direction, -1)
            has_mac = _take(data, b + 11, 1) == 6
            cols["eth_src"][s2] = np.where(has_mac, _take(data, b + 12, 6), 0).astype(np.uint64)
            l3[s2] = 20
            ethertype[s2] = _take(data, b, 2)
        r = np.flatnonzero(np.isin(lt, (LT_RAW, LT_IPV4, LT_IPV6)) & (cap >= 1))
        if r.size:
            version = _take(data, start[r], 1) >> 4
            by_nibble = np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, -1))
            kind = lt[r]
            l3[r] = 0
            ethertype[r] = np.where(kind == LT_IPV4, ETH_IPV4, np.where(kind == LT_IPV6, ETH_IPV6, by_nibble))
        z = np.flatnonzero(np.isin(lt, (LT_NULL, LT_LOOP)) & (cap >= 4))
        if z.size:
            big = _take(data, start[z], 4)
            little = big.astype(np.uint32).byteswap().astype(np.int64)
            # LT_NULL is in the writer's byte order: the reading that gives a small number is the right one
            family = np.where((lt[z] == LT_NULL) & (little <= 0xFFFF), little, big)
            l3[z] = 4
            ethertype[z] = np.where(
                np.isin(family, AF_IPV4), ETH_IPV4, np.where(np.isin(family, AF_IPV6), ETH_IPV6, -1)
            )
        linked = np.flatnonzero(l3 >= 0)
        cols["l3_off"][linked] = l3[linked]
        cols["ethertype"][linked] = ethertype[linked]

    # --- IPv4 without options, not fragmented -------------------------------------------------------

    def _ipv4(self, rows: np.ndarray, l3: np.ndarray) -> None:
        data, cols = self.data, self.cols
        cap = self.cap[rows]
        whole = cap >= l3 + 20
        self.slow[rows[~whole]] = True
        rows, l3, cap = rows[whole], l3[whole], cap[whole]
        if rows.size == 0:
            return
        hdr = data[(self.start[rows] + l3)[:, None] + _SPAN[20]].astype(np.int64)
        flags = (hdr[:, 6] << 8) | hdr[:, 7]
        simple = ((hdr[:, 0] >> 4) == 4) & ((hdr[:, 0] & 15) == 5) & ((flags & 0x3FFF) == 0)
        self.slow[rows[~simple]] = True
        rows, l3, cap, hdr, flags = rows[simple], l3[simple], cap[simple], hdr[simple], flags[simple]
        proto = hdr[:, 9]
        tunnel = np.isin(proto, TUNNEL_PROTOS)
        self.slow[rows[tunnel]] = True
        keep = ~tunnel
        rows, l3, cap, hdr, flags, proto = (
            rows[keep],
            l3[keep],
            cap[keep],
            hdr[keep],
            flags[keep],
            proto[keep],
        )
        ip_len = (hdr[:, 2] << 8) | hdr[:, 3]
        cols["ip_version"][rows] = 4
        cols["ip_hdr_len"][rows] = 20
        cols["ip_len"][rows] = ip_len
        cols["ip_id"][rows] = (hdr[:, 4] << 8) | hdr[:, 5]
        cols["ip_df"][rows] = (flags & 0x4000) != 0
        cols["ip_frag_off"][rows] = 0
        cols["ip_ttl"][rows] = hdr[:, 8]
        cols["ip_proto"][rows] = proto
        self.text.add(
            "ip_src", rows, (hdr[:, 12] << 24) | (hdr[:, 13] << 16) | (hdr[:, 14] << 8) | hdr[:, 15]
        )
        self.text.add(
            "ip_dst", rows, (hdr[:, 16] << 24) | (hdr[:, 17] << 16) | (hdr[:, 18] << 8) | hdr[:, 19]
        )
        # end of the datagram within the captured bytes (Ethernet padding is not payload)
        pend = np.where(ip_len >= 20, np.minimum(cap, l3 + ip_len), cap)
        l4 = l3 + 20
        ip_payload = ip_len - 20
        for proto_value, handler in (
            (IPPROTO_UDP, self._udp),
            (IPPROTO_TCP, self._tcp),
            (IPPROTO_ICMP, self._icmp),
        ):
            sel = proto == proto_value
            if sel.any():
                handler(rows[sel], l4[sel], pend[sel], ip_payload[sel])

    # --- transport --------------------------------------------------------------------------------

    def _header(self, rows: np.ndarray, l4: np.ndarray, pend: np.ndarray, size: int):
        """Rows whose `size`-byte transport header lies inside the datagram, and those header bytes."""
        fits = l4 + size <= pend
        self.slow[rows[~fits]] = True
        rows, l4, pend = rows[fits], l4[fits], pend[fits]
        hdr = self.data[(self.start[rows] + l4)[:, None] + _SPAN[size]].astype(np.int64)
        return fits, rows, l4, pend, hdr

    def _udp(self, rows: np.ndarray, l4: np.ndarray, pend: np.ndarray, ip_payload: np.ndarray) -> None:
        cols = self.cols
        _, rows, l4, pend, hdr = self._header(rows, l4, pend, 8)
        sport = (hdr[:, 0] << 8) | hdr[:, 1]
        dport = (hdr[:, 2] << 8) | hdr[:, 3]
        udp_len = (hdr[:, 4] << 8) | hdr[:, 5]
        cols["sport"][rows] = sport
        cols["dport"][rows] = dport
        cols["udp_len"][rows] = udp_len
        cols["udp_csum"][rows] = (hdr[:, 6] << 8) | hdr[:, 7]
        cols["l4_payload_len"][rows] = np.where(udp_len >= 8, udp_len - 8, -1)
        p = l4 + 8
        vxlan = np.isin(dport, self.vxlan_ports)
        geneve = ~vxlan & np.isin(dport, self.geneve_ports)
        sleeve = ~vxlan & ~geneve & ((sport == self.weave_port) | (dport == self.weave_port))
        if vxlan.any():
            self._vxlan(rows[vxlan], p[vxlan], pend[vxlan], udp_len[vxlan], dport[vxlan] == self.fastdp_port)
        if geneve.any():
            self._geneve(rows[geneve], p[geneve], pend[geneve], udp_len[geneve])
        if sleeve.any():
            self._sleeve(rows[sleeve], p[sleeve], pend[sleeve], udp_len[sleeve])

    def _tcp(self, rows: np.ndarray, l4: np.ndarray, pend: np.ndarray, ip_payload: np.ndarray) -> None:
        cols = self.cols
        fits, rows, l4, pend, hdr = self._header(rows, l4, pend, 20)
        ip_payload = ip_payload[fits]
        sport = (hdr[:, 0] << 8) | hdr[:, 1]
        dport = (hdr[:, 2] << 8) | hdr[:, 3]
        data_off = (hdr[:, 12] >> 4) * 4
        payload_len = ip_payload - data_off
        payload_len = np.where((data_off >= 20) & (ip_payload >= 0) & (payload_len >= 0), payload_len, -1)
        # the Weave control stream is stateful: those segments go through the per-packet path, in order
        control = ((sport == self.weave_port) | (dport == self.weave_port)) & (payload_len > 0)
        self.slow[rows[control]] = True
        keep = ~control
        rows, hdr = rows[keep], hdr[keep]
        cols["sport"][rows] = sport[keep]
        cols["dport"][rows] = dport[keep]
        cols["tcp_seq"][rows] = (hdr[:, 4] << 24) | (hdr[:, 5] << 16) | (hdr[:, 6] << 8) | hdr[:, 7]
        cols["tcp_ack"][rows] = (hdr[:, 8] << 24) | (hdr[:, 9] << 16) | (hdr[:, 10] << 8) | hdr[:, 11]
        cols["tcp_flags"][rows] = hdr[:, 13]
        cols["l4_payload_len"][rows] = payload_len[keep]

    def _icmp(self, rows: np.ndarray, l4: np.ndarray, pend: np.ndarray, ip_payload: np.ndarray) -> None:
        cols = self.cols
        fits, rows, l4, pend, hdr = self._header(rows, l4, pend, 8)
        ip_payload = ip_payload[fits]
        icmp_type = hdr[:, 0]
        error = np.isin(icmp_type, ICMP4_ERROR_TYPES)  # quotes a datagram: per-packet path
        self.slow[rows[error]] = True
        keep = ~error
        rows = rows[keep]
        cols["icmp_type"][rows] = icmp_type[keep]
        cols["icmp_code"][rows] = hdr[keep, 1]
        cols["l4_payload_len"][rows] = np.where(ip_payload[keep] >= 8, ip_payload[keep] - 8, -1)

    # --- what UDP carries -------------------------------------------------------------------------

    def _vxlan(
        self, rows: np.ndarray, p: np.ndarray, pend: np.ndarray, udp_len: np.ndarray, weave: np.ndarray
    ) -> None:
        cols = self.cols
        fits = p + 8 <= pend
        rows, p, pend, udp_len, weave = rows[fits], p[fits], pend[fits], udp_len[fits], weave[fits]
        if rows.size == 0:
            return
        hdr = self.data[(self.start[rows] + p)[:, None] + _SPAN[8]].astype(np.int64)
        cols["tun_type"][rows] = TUN_VXLAN
        cols["vxlan_flags"][rows] = hdr[:, 0]
        cols["vxlan_vni"][rows] = (hdr[:, 4] << 16) | (hdr[:, 5] << 8) | hdr[:, 6]
        cols["inner_len"][rows] = np.where(udp_len >= 16, udp_len - 16, -1)
        self._inner_ethernet(rows, p + 8, pend, weave)

    def _geneve(self, rows: np.ndarray, p: np.ndarray, pend: np.ndarray, udp_len: np.ndarray) -> None:
        cols = self.cols
        fits = p + 8 <= pend
        rows, p, pend, udp_len = rows[fits], p[fits], pend[fits], udp_len[fits]
        if rows.size == 0:
            return
        hdr = self.data[(self.start[rows] + p)[:, None] + _SPAN[8]].astype(np.int64)
        protocol = (hdr[:, 2] << 8) | hdr[:, 3]
        ethernet = protocol == ETH_TEB
        self.slow[rows[~ethernet]] = True  # Geneve carrying IP directly is rare: per-packet path
        rows, p, pend, udp_len, hdr = (
            rows[ethernet],
            p[ethernet],
            pend[ethernet],
            udp_len[ethernet],
            hdr[ethernet],
        )
        options = (hdr[:, 0] & 0x3F) * 4
        inner_len = udp_len - 16 - options
        cols["tun_type"][rows] = TUN_GENEVE
        cols["vxlan_vni"][rows] = (hdr[:, 4] << 16) | (hdr[:, 5] << 8) | hdr[:, 6]
        cols["inner_len"][rows] = np.where(inner_len >= 0, inner_len, -1)
        self._inner_ethernet(rows, p + 8 + options, pend, np.zeros(rows.size, dtype=bool))

    def _inner_ethernet(self, rows: np.ndarray, q: np.ndarray, pend: np.ndarray, weave: np.ndarray) -> None:
        data, cols = self.data, self.cols
        base = self.start[rows] + q
        has_dst, has_src, has_type = q + 6 <= pend, q + 12 <= pend, q + 14 <= pend
        dst = _take_if(data, base, 6, has_dst, 0)
        src = _take_if(data, base + 6, 6, has_src, 0)
        etype = _take_if(data, base + 12, 2, has_type, -1)
        cols["inner_eth_dst"][rows] = dst.astype(np.uint64)
        cols["inner_eth_src"][rows] = src.astype(np.uint64)
        cols["inner_ethertype"][rows] = etype
        zero = has_type & (dst == 0) & (src == 0) & (etype == 0)
        cols["inner_zero_eth"][rows] = zero
        heartbeat = zero & weave
        if heartbeat.any():
            has_uid = heartbeat & (q + 22 <= pend)
            has_len = heartbeat & (q + 24 <= pend)
            uid = _take_if(data, base + 14, 8, has_uid, 0)
            cols["weave_conn_uid"][rows[has_uid]] = uid[has_uid]
            cols["weave_hb_len"][rows[has_len]] = _take_if(data, base + 22, 2, has_len, -1)[has_len]
        self.slow[rows[has_type & (etype == ETH_IPV6)]] = True
        ipv4 = has_type & (etype == ETH_IPV4) & (q + 15 <= pend)
        if not ipv4.any():
            return
        i = q + 14
        first = _take_if(data, base + 14, 1, ipv4, 0)
        ipv4 &= (first >> 4) == 4
        has_proto, has_src, has_dst = (
            ipv4 & (i + 10 <= pend),
            ipv4 & (i + 16 <= pend),
            ipv4 & (i + 20 <= pend),
        )
        cols["inner_ip_proto"][rows[has_proto]] = _take_if(data, base + 23, 1, has_proto, -1)[has_proto]
        self.text.add("inner_ip_src", rows[has_src], _take_if(data, base + 26, 4, has_src, 0)[has_src])
        self.text.add("inner_ip_dst", rows[has_dst], _take_if(data, base + 30, 4, has_dst, 0)[has_dst])

    def _sleeve(self, rows: np.ndarray, p: np.ndarray, pend: np.ndarray, udp_len: np.ndarray) -> None:
        data, cols = self.data, self.cols
        base = self.start[rows] + p
        has_sender, has_src, has_counter = p + 6 <= pend, p + 12 <= pend, p + 14 <= pend
        has_dst, has_len, has_frame = p + 18 <= pend, p + 20 <= pend, p + 34 <= pend
        cols["sleeve_sender"][rows] = _take_if(data, base, 6, has_sender, 0).astype(np.uint64)
        cols["sleeve_src_peer"][rows] = _take_if(data, base + 6, 6, has_src, 0).astype(np.uint64)
        counter = _take_if(data, base + 6, 8, has_counter, 0) & np.uint64(COUNTER_MASK)
        cols["sleeve_counter"][rows] = np.where(has_counter, counter.astype(np.int64), -1)
        cols["sleeve_dst_peer"][rows] = _take_if(data, base + 12, 6, has_dst, 0).astype(np.uint64)
        frame_len = _take_if(data, base + 18, 2, has_len, -1)
        cols["sleeve_frame_len"][rows] = frame_len
        frame_hdr = data[np.where(has_frame, base + 20, 0)[:, None] + _SPAN[14]]
        cols["sleeve_zero_frame"][rows] = has_frame & ~frame_hdr.any(axis=1)
        payload_len = udp_len - 8
        parsed = has_len & (payload_len >= 20)
        exact = parsed & (20 + frame_len == payload_len)
        cols["sleeve_frames"][rows] = np.where(exact, 1, -1)
        # a first frame shorter than the datagram means a batch of frames: walk it per packet
        self.slow[rows[parsed & (20 + frame_len < payload_len)]] = True
