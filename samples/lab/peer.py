"""Weave-shaped traffic helper: one fake Weave peer (TCP 6783 control, sleeve UDP 6783, fastdp VXLAN) in a netns."""

# Runs inside a network namespace (`ip netns exec NS python3 peer.py CONFIG.json`), stdlib only.
# Weave itself does not run in the lab; this helper speaks just enough of its wire format
# (see docs/weave-wire-format.md in the shared docs) that the kernel builds, fragments, refuses
# and answers real packets. Every wait is bounded by the config's `duration`.

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import select
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0
IP_PMTUDISC_DO = 2
IP_MTU = 14
IPV6_MTU_DISCOVER = 23
IPV6_MTU = 24
IPV6_PMTUDISC_DONT = 0
IPV6_PMTUDISC_DO = 2
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

PROTOCOL_HEADER = b"weave\x01\x02"
FLAG_UNENCRYPTED = b"\x00"
FLAG_ENCRYPTED = b"\x01"
PUBLIC_KEY_LEN = 32  # the Curve25519 public key after flag 01
SEAL_TAG_LEN = 16  # secretbox Poly1305 tag in front of every encrypted body
IPPROTO_ESP = 50
ESP_ICV_LEN = 16
ESP_IV_LEN = 8
TAG_HEARTBEAT = 0
TAG_OVERLAY = 7
FASTDP_INDEX = 0
SLEEVE_HEARTBEAT_ACK = 1
SLEEVE_FRAGTEST_ACK = 2
SLEEVE_PMTU_VERIFIED = 3
FASTDP_HEARTBEAT_ACK = 0

FASTDP_PORT_NUMBER = 6784
FRAGTEST_SIZE = 60001
PMTU_DISCOVERY_SIZE = 60000
SLEEVE_HEARTBEAT_FRAME = 22  # 14 zero header bytes + 8-byte connection UID
SLEEVE_OVERHEAD = 62  # outer IPv4 packet minus inner IP packet (20 IP + 8 UDP + 6 + 14 + 14)
PMTU_FLOOR = 552  # Linux's minimum PMTU, where weave's search starts
ZERO_ETH = bytes(14)


def gob_uint(value: int) -> bytes:
    """encoding/gob unsigned integer: one byte below 128, else negated byte count + big-endian bytes."""
    if value < 128:
        return bytes([value])
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([256 - len(raw)]) + raw


def gob_string(text: str) -> bytes:
    raw = text.encode()
    return gob_uint(len(raw)) + raw


def read_gob_uint(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 128:
        return first, pos + 1
    count = 256 - first
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


# gob type definition of map[string]string as a fresh Go process sends it (wire-format doc §2.2)
GOB_MAP_TYPEDEF = bytes.fromhex("0eff81040102ff8200010c010c0000")


def encode_features(features: list[tuple[str, str]]) -> bytes:
    """The gob-encoded features map that opens a mesh v2 connection (type definition + value)."""
    value = b"\xff\x82\x00" + gob_uint(len(features))
    for key, val in features:
        value += gob_string(key) + gob_string(val)
    return GOB_MAP_TYPEDEF + gob_uint(len(value)) + value


def decode_features(body: bytes) -> dict[str, str]:
    """Inverse of encode_features, tolerant of the type id bytes."""
    size, pos = read_gob_uint(body, 0)
    pos += size  # skip the type definition message
    _, pos = read_gob_uint(body, pos)  # value message length
    pos += 3  # type id (2 bytes) + singleton marker
    count, pos = read_gob_uint(body, pos)
    out: dict[str, str] = {}
    for _ in range(min(count, 64)):
        klen, pos = read_gob_uint(body, pos)
        key = body[pos : pos + klen].decode(errors="replace")
        pos += klen
        vlen, pos = read_gob_uint(body, pos)
        out[key] = body[pos : pos + vlen].decode(errors="replace")
        pos += vlen
    return out


def name_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def message(tag: int, payload: bytes = b"") -> bytes:
    body = bytes([tag]) + payload
    return struct.pack(">I", len(body)) + body


def keystream(key: bytes, counter: int, size: int) -> bytes:
    """Lab stand-in for secretbox's cipher (stdlib has no XSalsa20): SHA-256 in counter mode."""
    out = b""
    block = 0
    while len(out) < size:  # bounded by size / 32
        out += hashlib.sha256(key + struct.pack(">QQ", counter, block)).digest()
        block += 1
    return out[:size]


def seal(key: bytes, counter: int, body: bytes) -> bytes:
    """16-byte tag + ciphertext, the shape of weave's NaCl secretbox bodies (length prefix stays clear)."""
    cipher = bytes(a ^ b for a, b in zip(body, keystream(key, counter, len(body)), strict=True))
    tag = hmac.new(key, struct.pack(">Q", counter) + cipher, hashlib.sha256).digest()[:SEAL_TAG_LEN]
    return tag + cipher


def unseal(key: bytes, counter: int, sealed: bytes) -> bytes:
    cipher = sealed[SEAL_TAG_LEN:]
    return bytes(a ^ b for a, b in zip(cipher, keystream(key, counter, len(cipher)), strict=True))


def direction_key(sender_name: str) -> bytes:
    """A fixed test key per direction (the lab has no X25519 exchange; weave derives it from one)."""
    return hashlib.sha256(b"weavepcap-lab-session-key:" + sender_name.encode()).digest()


@dataclass
class Config:
    name: str  # host name used in logs
    peer_name: str  # 6-byte MAC-style peer name (what sleeve frames carry)
    features_name: str  # `Name` in the features map (normally == peer_name)
    nickname: str
    short_id: int
    conn_id: int
    self_addr: str
    peer_addr: str
    peer_peer_name: str  # the remote peer's 6-byte name, for sleeve frame headers
    role: str  # "dial" or "listen"
    overlays: list[str]
    duration: float
    log: str
    family: int = 4
    vxlan_dev: str = "vxlan-6784"
    overlay_mtu: int = 1410
    fast_interval: float = 0.5  # heartbeats until acked (weave: 0.5 s)
    slow_interval: float = 2.5  # heartbeats once acked (weave: 10 s, scaled down)
    tcp_heartbeat_interval: float = 2.0  # weave: 30 s, scaled down
    forwarder_timeout: float = 0.0  # 0 = never give up (weave: 60 s)
    redial_initial: float = 0.5  # weave: 2 s
    max_dials: int = 8
    fragtest: bool = True
    fragtest_repeat: float = 0.0  # 0 = once (weave: every 5 min)
    pmtu_verify: bool = True
    verify_first_wait: float = 0.01
    verify_sends: int = 6  # weave: 8 (10 ms .. 1280 ms), fewer here to keep the lab short
    sleeve_data_frames: int = 0  # data frames sent over sleeve once sleeve is verified
    stall_after_probe: list[str] = field(default_factory=list)  # nft script applied after the DF probe
    stall_delay: float = 0.0  # seconds between the DF probe and the stall
    start_delay: float = 0.0
    encrypt_control: bool = False  # flag 01 + 32-byte key, then sealed (opaque) message bodies
    # ESP stand-in for kernels without CONFIG_INET_ESP: fastdp heartbeats as VXLAN inside ESP on a raw
    # IPPROTO_ESP socket (the kernel writes the IP header, DF, routes them); 0 = off
    esp_spi_out: int = 0
    vni_out: int = 0


class Log:
    def __init__(self, path: str, t0: float) -> None:
        self.path = path
        self.t0 = t0
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: str, **attrs: Any) -> None:
        self.events.append({"t": round(time.monotonic() - self.t0, 4), "event": event, **attrs})

    def save(self) -> None:
        with open(self.path, "w") as fh:
            json.dump(self.events, fh, indent=1)


class Connection:
    """One control connection plus the overlay forwarders riding on it."""

    def __init__(self, peer: Peer, sock: socket.socket) -> None:
        self.peer = peer
        self.cfg = peer.cfg
        self.sock = sock
        self.inbuf = b""
        self.got_header = False
        self.remote: dict[str, str] | None = None
        self.uid = 0  # ConnID(a) XOR ConnID(b), known once the peer's features arrive
        now = time.monotonic()
        self.opened = now
        self.closed = False
        both_fastdp = "fastdp" in self.cfg.overlays
        self.sleeve_index = 1 if both_fastdp else 0
        self.fastdp = {"acked": False, "next": now, "ack_sent": False, "on": both_fastdp}
        self.sleeve = {
            "acked": False,
            "next": now if self.cfg.role == "dial" else None,  # the accepting side waits for one
            "ack_sent": False,
            "on": "sleeve" in self.cfg.overlays,
            "fragtest_sent": 0.0,
            "fragtest_acked": False,
            "probed": False,
        }
        self.verify: dict[str, Any] | None = None
        self.verified_mtu = 0
        self.data_sent = 0
        self.next_tcp_heartbeat = now + self.cfg.tcp_heartbeat_interval
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_counter = 0
        self.recv_counter = 0
        self.send_key = direction_key(self.cfg.peer_name)
        self.recv_key = direction_key(self.cfg.peer_peer_name)
        if self.cfg.encrypt_control:
            public_key = hashlib.sha256(b"weavepcap-lab-public-key:" + self.cfg.peer_name.encode()).digest()
            self.send_raw(PROTOCOL_HEADER + FLAG_ENCRYPTED + public_key[:PUBLIC_KEY_LEN])
        else:
            self.send_raw(PROTOCOL_HEADER + FLAG_UNENCRYPTED)
        overlays = " ".join(self.cfg.overlays)
        features = [
            ("PeerNameFlavour", "mac"),
            ("Name", self.cfg.features_name),
            ("NickName", self.cfg.nickname),
            ("ShortID", str(self.cfg.short_id)),
            ("UID", str(self.cfg.conn_id ^ 0x5DEECE66D)),
            ("ConnID", str(self.cfg.conn_id)),
            ("Trusted", "false"),
            ("Overlays", overlays),
        ]
        body = self.seal(encode_features(features))
        self.send_raw(struct.pack(">I", len(body)) + body)
        peer.log("control.handshake_sent")

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.peer.log("control.send_error", error=exc.strerror)

    def seal(self, body: bytes) -> bytes:
        if not self.cfg.encrypt_control:
            return body
        self.send_counter += 1
        return seal(self.send_key, self.send_counter, body)

    def send_message(self, tag: int, payload: bytes, what: str) -> None:
        body = self.seal(bytes([tag]) + payload)
        self.send_raw(struct.pack(">I", len(body)) + body)
        self.peer.log("control.sent", what=what)

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            self.peer.log("control.recv_error", error=exc.strerror)
            self.close(reset=False)
            return
        if not data:
            self.peer.log("control.eof")
            self.close(reset=True)
            return
        self.inbuf += data
        if not self.got_header:
            header_len = 8 + (PUBLIC_KEY_LEN if self.cfg.encrypt_control else 0)
            if len(self.inbuf) < header_len:
                return
            if self.inbuf[:7] != PROTOCOL_HEADER:
                self.peer.log("control.bad_header")
                self.close(reset=True)
                return
            self.inbuf = self.inbuf[header_len:]
            self.got_header = True
        while len(self.inbuf) >= 4:
            (length,) = struct.unpack(">I", self.inbuf[:4])
            if len(self.inbuf) < 4 + length:
                break
            body = self.inbuf[4 : 4 + length]
            self.inbuf = self.inbuf[4 + length :]
            if self.cfg.encrypt_control:
                self.recv_counter += 1
                body = unseal(self.recv_key, self.recv_counter, body)
            self.on_message(body)

    def on_message(self, body: bytes) -> None:
        if self.remote is None:
            self.remote = decode_features(body)
            self.uid = self.cfg.conn_id ^ int(self.remote.get("ConnID", "0"))
            if "fastdp" not in self.remote.get("Overlays", ""):
                self.fastdp["on"] = False
                self.sleeve_index = 0
            self.peer.log("control.features", nickname=self.remote.get("NickName"), uid=self.uid)
            return
        tag = body[0]
        if tag == TAG_HEARTBEAT:
            self.peer.log("control.heartbeat_received")
        elif tag == TAG_OVERLAY and len(body) >= 3:
            index, sub = body[1], body[2]
            if index == FASTDP_INDEX and self.fastdp["on"] and sub == FASTDP_HEARTBEAT_ACK:
                self.peer.log("fastdp.heartbeat_acked")
                self.fastdp["acked"] = True
                self.fastdp["next"] = time.monotonic() + self.cfg.slow_interval
            elif index == self.sleeve_index and sub == SLEEVE_HEARTBEAT_ACK:
                self.peer.log("sleeve.heartbeat_acked")
                if not self.sleeve["acked"]:
                    self.sleeve["acked"] = True
                    self.sleeve["next"] = time.monotonic() + self.cfg.slow_interval
                    self.sleeve_probe()
            elif index == self.sleeve_index and sub == SLEEVE_FRAGTEST_ACK:
                self.peer.log("sleeve.fragtest_acked")
                self.sleeve["fragtest_acked"] = True
            elif index == self.sleeve_index and sub == SLEEVE_PMTU_VERIFIED and len(body) >= 5:
                mtu = struct.unpack(">H", body[3:5])[0]
                self.peer.log("sleeve.pmtu_verify_acked", mtu=mtu)
                self.on_verify_ack(mtu)

    # ---- sleeve -------------------------------------------------------------------------
    def sleeve_frame(self, frame: bytes) -> bytes:
        return (
            name_bytes(self.cfg.peer_name)
            + name_bytes(self.cfg.peer_name)
            + name_bytes(self.cfg.peer_peer_name)
            + struct.pack(">H", len(frame))
            + frame
        )

    def sleeve_send(self, frame: bytes, df: bool, what: str) -> int:
        """Send one frame over sleeve; returns 0 or the errno the kernel gave."""
        udp = self.peer.udp
        if udp is None:
            return errno.EBADF
        level, opt = (
            (socket.IPPROTO_IP, IP_MTU_DISCOVER) if self.cfg.family == 4 else (socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER)
        )
        udp.setsockopt(level, opt, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
        try:
            udp.sendto(self.sleeve_frame(frame), (self.cfg.peer_addr, self.peer.weave_port))
        except OSError as exc:
            self.peer.log("sleeve.send_error", what=what, errno=errno.errorcode.get(exc.errno or 0, str(exc.errno)), size=len(frame))
            return exc.errno or -1
        self.peer.log("sleeve.sent", what=what, frame_len=len(frame), df=df)
        return 0

    def kernel_pmtu(self) -> int:
        """The route's PMTU toward the peer, read the way weave does after EMSGSIZE."""
        fam = socket.AF_INET if self.cfg.family == 4 else socket.AF_INET6
        probe = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            probe.connect((self.cfg.peer_addr, self.peer.weave_port))
            if self.cfg.family == 4:
                return probe.getsockopt(socket.IPPROTO_IP, IP_MTU)
            return probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
        finally:
            probe.close()

    def sleeve_probe(self) -> None:
        """After our sleeve heartbeat is acked: frag test, DF discovery probe, then PMTU verification."""
        if self.cfg.fragtest:
            self.sleeve_send(bytes(FRAGTEST_SIZE), df=False, what="fragtest")
            self.sleeve["fragtest_sent"] = time.monotonic()
        if self.sleeve["probed"]:
            return
        self.sleeve["probed"] = True
        err = self.sleeve_send(bytes(PMTU_DISCOVERY_SIZE), df=True, what="pmtu_discovery")
        self.peer.log("sleeve.pmtu_discovery_result", emsgsize=err == errno.EMSGSIZE)
        if self.cfg.stall_after_probe:
            self.peer.stall_at = time.monotonic() + self.cfg.stall_delay
        if self.cfg.pmtu_verify:
            self.start_verify(self.kernel_pmtu())

    def start_verify(self, pmtu: int) -> None:
        self.verify = {"low": PMTU_FLOOR, "high": pmtu + 1, "candidate": pmtu, "sends": 0, "wait": 0.0, "next": 0.0}
        self.peer.log("sleeve.pmtu_search_start", kernel_pmtu=pmtu)
        self.verify_send()

    def verify_send(self) -> None:
        v = self.verify
        assert v is not None
        inner = v["candidate"] - SLEEVE_OVERHEAD + 14
        if self.cfg.family == 6:
            inner -= 20
        err = self.sleeve_send(bytes(inner), df=True, what="pmtu_verify")
        if err == errno.EMSGSIZE:
            # the kernel learnt a smaller PMTU (ICMP 3/4 arrived): restart the search below it
            lower = min(self.kernel_pmtu(), v["candidate"] - 1)
            if lower <= PMTU_FLOOR:
                self.peer.log("sleeve.pmtu_search_abandoned", kernel_pmtu=lower)
                self.verify = None
                return
            self.start_verify(lower)
            return
        v["sends"] += 1
        v["wait"] = self.cfg.verify_first_wait if v["sends"] == 1 else v["wait"] * 2
        v["next"] = time.monotonic() + v["wait"]

    def on_verify_ack(self, mtu: int) -> None:
        v = self.verify
        if v is None:
            return
        outer = mtu + SLEEVE_OVERHEAD + (20 if self.cfg.family == 6 else 0)
        if outer != v["candidate"]:
            return
        v["low"] = outer
        self.next_candidate()

    def verify_timeout(self) -> None:
        v = self.verify
        assert v is not None
        if v["sends"] < self.cfg.verify_sends:
            self.verify_send()
            return
        v["high"] = v["candidate"]
        self.next_candidate()

    def next_candidate(self) -> None:
        v = self.verify
        assert v is not None
        if v["high"] - v["low"] <= 1:
            self.verified_mtu = v["low"] - SLEEVE_OVERHEAD - (20 if self.cfg.family == 6 else 0)
            self.peer.log("sleeve.mtu_verified", mtu=self.verified_mtu, path_mtu=v["low"])
            self.verify = None
            return
        v["candidate"] = (v["low"] + v["high"]) // 2
        v["sends"] = 0
        self.verify_send()

    def on_sleeve_datagram(self, payload: bytes) -> None:
        if len(payload) < 20:
            return
        frame = payload[20:]
        if frame[:14] != ZERO_ETH:
            self.peer.log("sleeve.data_received", frame_len=len(frame))
            return
        if len(frame) == SLEEVE_HEARTBEAT_FRAME:
            self.peer.log("sleeve.heartbeat_received")
            if self.sleeve["next"] is None and self.sleeve["on"]:
                self.sleeve["next"] = time.monotonic()  # the accepting side answers with its own
            if not self.sleeve["ack_sent"]:
                self.sleeve["ack_sent"] = True
                self.send_message(TAG_OVERLAY, bytes([self.sleeve_index, SLEEVE_HEARTBEAT_ACK]), "sleeve_heartbeat_ack")
        elif len(frame) == FRAGTEST_SIZE:
            self.peer.log("sleeve.fragtest_received")
            self.send_message(TAG_OVERLAY, bytes([self.sleeve_index, SLEEVE_FRAGTEST_ACK]), "fragtest_ack")
        elif len(frame) != PMTU_DISCOVERY_SIZE:
            mtu = len(frame) - 14
            self.peer.log("sleeve.pmtu_verify_received", mtu=mtu)
            self.send_message(TAG_OVERLAY, bytes([self.sleeve_index, SLEEVE_PMTU_VERIFIED]) + struct.pack(">H", mtu), "pmtu_verified")

    def sleeve_data_frame(self, seq: int) -> bytes:
        """An inner Ethernet + IPv4 ICMP echo request between two container addresses."""
        src_mac = bytes.fromhex("aa" + self.cfg.peer_name.replace(":", "")[2:])
        dst_mac = bytes.fromhex("aa" + self.cfg.peer_peer_name.replace(":", "")[2:])
        icmp_body = struct.pack(">BBHHH", 8, 0, 0, 0x77, seq) + bytes(56)
        csum = inet_checksum(icmp_body)
        icmp_body = icmp_body[:2] + struct.pack(">H", csum) + icmp_body[4:]
        src_ip = socket.inet_aton(self.peer.container_addr(self.cfg.short_id))
        dst_ip = socket.inet_aton(self.peer.container_addr(int(self.remote.get("ShortID", "0")) if self.remote else 0))
        ip_header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp_body), seq, 0x4000, 64, 1, 0, src_ip, dst_ip)
        ip_header = ip_header[:10] + struct.pack(">H", inet_checksum(ip_header)) + ip_header[12:]
        return dst_mac + src_mac + b"\x08\x00" + ip_header + icmp_body

    # ---- fastdp -------------------------------------------------------------------------
    def fastdp_heartbeat(self) -> None:
        frame_len = 14 + self.cfg.overlay_mtu
        frame = ZERO_ETH + struct.pack(">QH", self.uid, frame_len)
        frame += bytes(frame_len - len(frame))
        if self.peer.esp is not None:
            self.esp_send(frame)
            return
        pkt = self.peer.packet
        if pkt is None:
            return
        try:
            pkt.send(frame)
            self.peer.log("fastdp.heartbeat_sent", frame_len=frame_len)
        except OSError as exc:
            self.peer.log("fastdp.send_error", error=exc.strerror)

    def esp_send(self, frame: bytes) -> None:
        """VXLAN (UDP to 6784, checksum 0) in ESP transport mode, rfc4106 layout: SPI, seq, IV, data, ICV."""
        vxlan = struct.pack(">BBHI", 0x08, 0, 0, self.cfg.vni_out << 8) + frame
        sport = 32768 + (self.cfg.short_id * 7919) % 28000  # the kernel hashes the inner flow; fixed here
        udp = struct.pack(">HHHH", sport, FASTDP_PORT_NUMBER, 8 + len(vxlan), 0) + vxlan
        pad = (-(len(udp) + 2)) % 4
        plain = udp + bytes(range(1, pad + 1)) + bytes([pad, socket.IPPROTO_UDP])
        self.peer.esp_seq += 1
        seq = self.peer.esp_seq
        key = direction_key("esp:" + self.cfg.peer_name)
        iv = hashlib.sha256(key + struct.pack(">Q", seq)).digest()[:ESP_IV_LEN]
        cipher = bytes(a ^ b for a, b in zip(plain, keystream(key, seq, len(plain)), strict=True))
        head = struct.pack(">II", self.cfg.esp_spi_out, seq) + iv
        icv = hmac.new(key, head + cipher, hashlib.sha256).digest()[:ESP_ICV_LEN]
        assert self.peer.esp is not None
        try:
            self.peer.esp.sendto(head + cipher + icv, (self.cfg.peer_addr, 0))
            self.peer.log("fastdp.heartbeat_sent", frame_len=len(frame), esp_ip_len=20 + len(head + cipher + icv),
                          spi=self.cfg.esp_spi_out)
        except OSError as exc:
            self.peer.log("fastdp.send_error", error=exc.strerror)

    def on_vxlan_frame(self, frame: bytes) -> None:
        if frame[:14] != ZERO_ETH or len(frame) < 24:
            return
        uid, length = struct.unpack(">QH", frame[14:24])
        if uid != self.uid or length != len(frame):
            self.peer.log("fastdp.heartbeat_mismatch", uid=uid, length=length, got=len(frame))
            return
        self.peer.log("fastdp.heartbeat_received", frame_len=len(frame))
        if not self.fastdp["ack_sent"]:
            self.fastdp["ack_sent"] = True
            self.send_message(TAG_OVERLAY, bytes([FASTDP_INDEX, FASTDP_HEARTBEAT_ACK]), "fastdp_heartbeat_ack")

    # ---- timers -------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if self.remote is None or self.closed:
            return
        if now >= self.next_tcp_heartbeat:
            self.send_message(TAG_HEARTBEAT, b"", "heartbeat")
            self.next_tcp_heartbeat = now + self.cfg.tcp_heartbeat_interval
        if self.fastdp["on"] and now >= self.fastdp["next"]:
            self.fastdp_heartbeat()
            self.fastdp["next"] = now + (self.cfg.slow_interval if self.fastdp["acked"] else self.cfg.fast_interval)
        s = self.sleeve
        if s["on"] and s["next"] is not None and now >= s["next"]:
            frame = ZERO_ETH + struct.pack(">Q", self.uid)
            self.sleeve_send(frame, df=True, what="heartbeat")
            s["next"] = now + (self.cfg.slow_interval if s["acked"] else self.cfg.fast_interval)
        if (
            self.cfg.fragtest_repeat
            and s["fragtest_sent"]
            and not s["fragtest_acked"]
            and now - s["fragtest_sent"] >= self.cfg.fragtest_repeat
        ):
            self.sleeve_send(bytes(FRAGTEST_SIZE), df=False, what="fragtest")
            s["fragtest_sent"] = now
            self.cfg.fragtest_repeat = 0.0  # only one repeat: trains are big
        if self.verify is not None and now >= self.verify["next"]:
            self.verify_timeout()
        if (
            self.verified_mtu
            and not self.fastdp["acked"]
            and self.data_sent < self.cfg.sleeve_data_frames
            and now - self.opened > 1.5
        ):
            self.data_sent += 1
            self.sleeve_send(self.sleeve_data_frame(self.data_sent), df=True, what="data")
        if self.cfg.forwarder_timeout and now - self.opened > self.cfg.forwarder_timeout:
            if not (self.fastdp["acked"] or s["acked"]):
                self.peer.log("control.no_working_forwarders")
                self.close(reset=True)

    def close(self, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        if reset:
            # weave sets SO_LINGER 0, so every close is an RST
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.peer.log("control.closed", reset=reset)


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Peer:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.t0 = time.monotonic()
        self.log = Log(cfg.log, self.t0)
        self.weave_port = 6783
        fam = socket.AF_INET if cfg.family == 4 else socket.AF_INET6
        self.family = fam
        self.udp: socket.socket | None = None
        self.packet: socket.socket | None = None
        self.listener: socket.socket | None = None
        self.conn: Connection | None = None
        self.dials = 0
        self.next_dial = self.t0
        self.backoff = cfg.redial_initial
        self.stall_at = 0.0
        if "sleeve" in cfg.overlays:
            self.udp = socket.socket(fam, socket.SOCK_DGRAM)
            self.udp.bind((cfg.self_addr, self.weave_port))
        self.esp: socket.socket | None = None
        self.esp_seq = 0
        if "fastdp" in cfg.overlays and cfg.esp_spi_out:
            self.esp = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_ESP)
            self.esp.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)  # DF, as weave's VXLAN
        elif "fastdp" in cfg.overlays:
            self.packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.packet.bind((cfg.vxlan_dev, 0))
        if cfg.role == "listen":
            self.listener = socket.socket(fam, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((cfg.self_addr, self.weave_port))
            self.listener.listen(4)

    def container_addr(self, short_id: int) -> str:
        return f"10.32.{(short_id >> 8) & 0xFF}.{short_id & 0xFF}"

    def stall(self) -> None:
        """Freeze this host's transmissions (nft netdev egress drop), like a wedged NIC."""
        script = "\n".join(self.cfg.stall_after_probe) + "\n"
        result = subprocess.run(["nft", "-f", "-"], input=script.encode(), capture_output=True, timeout=10)
        self.log("host.tx_stalled", ok=result.returncode == 0, stderr=result.stderr.decode()[:200])

    def dial(self) -> None:
        self.dials += 1
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.connect((self.cfg.peer_addr, self.weave_port))
        except OSError as exc:
            sock.close()
            self.log("control.dial_failed", error=errno.errorcode.get(exc.errno or 0, str(exc)))
            self.next_dial = time.monotonic() + self.backoff
            self.backoff *= 1.5
            return
        sock.settimeout(None)
        self.log("control.connected")
        self.conn = Connection(self, sock)

    def run(self) -> None:
        deadline = self.t0 + self.cfg.duration
        if self.cfg.start_delay:
            time.sleep(self.cfg.start_delay)
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if self.stall_at and now >= self.stall_at:
                self.stall_at = 0.0
                self.stall()
            if self.conn is not None and self.conn.closed:
                self.conn = None
                self.next_dial = now + self.backoff
            if self.conn is None and self.cfg.role == "dial" and now >= self.next_dial and self.dials < self.cfg.max_dials:
                self.dial()
            rlist: list[socket.socket] = [s for s in (self.udp, self.packet, self.esp, self.listener) if s is not None]
            if self.conn is not None:
                rlist.append(self.conn.sock)
            readable, _, _ = select.select(rlist, [], [], 0.005)
            for sock in readable:
                if sock is self.listener:
                    accepted, _ = sock.accept()
                    if self.conn is not None:
                        self.conn.close(reset=True)
                    self.log("control.accepted")
                    self.conn = Connection(self, accepted)
                elif sock is self.udp:
                    payload, _ = sock.recvfrom(70000)
                    if self.conn is not None and self.conn.remote is not None:
                        self.conn.on_sleeve_datagram(payload)
                elif sock is self.esp:
                    packet, _ = sock.recvfrom(70000)
                    self.log("fastdp.esp_received", ip_len=len(packet))
                elif sock is self.packet:
                    frame, addr = sock.recvfrom(70000)
                    if addr[2] != PACKET_OUTGOING and self.conn is not None and self.conn.remote is not None:
                        self.conn.on_vxlan_frame(frame)
                elif self.conn is not None and sock is self.conn.sock:
                    self.conn.on_readable()
            if self.conn is not None and not self.conn.closed:
                self.conn.tick(time.monotonic())
        if self.conn is not None:
            self.conn.close(reset=True)
        self.log.save()


def main(argv: list[str]) -> int:
    with open(argv[1]) as fh:
        cfg = Config(**json.load(fh))
    Peer(cfg).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
