"""Weave TCP control stream (mesh protocol v2): per-direction message boundaries and what each message is."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

from weavepcap.wire import (
    CONTROL_MAGIC,
    GOB_MAP_STRING_STRING,
    INT32_MAX,
    MAX_CONTROL_MESSAGE,
    PUBLIC_KEY_LEN,
    SECRETBOX_MIN,
    SUBTAG_PMTU_VERIFIED,
    TAG_HEARTBEAT,
    TAG_OVERLAY,
    TAGS_GOSSIP,
    TAGS_LEGACY_SLEEVE,
    clip_int8,
)

MAX_MESSAGES_PER_SEGMENT = 256
SEQ_MOD = 1 << 32
RECENT_STARTS = 16  # message starts remembered per direction for naming retransmissions


ConnKey = tuple[str, int, str, int]  # (src ip, src port, dst ip, dst port): one direction of a connection


@dataclass
class Direction:
    """What we know about one direction of one TCP 6783 connection."""

    expect: int | None = None  # sequence number of the next boundary (message or handshake step); None = lost
    phase: str = "messages"  # "flag" (encryption byte next), "pubkey" (key bytes next), "messages", "v1"
    pubkey_left: int = 0
    encrypted: int = -1  # flag byte seen in the handshake: 0 plain, 1 encrypted, -1 unknown
    version_max: int = -1
    features_pending: bool = False  # the next message is the features map
    carry: bytes = b""  # the first bytes of a length prefix that the previous segment cut in two
    # recent message starts (sequence number -> kind), so a retransmitted segment is named like the original
    recent: OrderedDict[int, str] = field(default_factory=OrderedDict)


def _signed(delta: int) -> int:
    """A 32-bit sequence difference as a signed number (sequence numbers wrap)."""
    delta %= SEQ_MOD
    return delta - SEQ_MOD if delta >= SEQ_MOD // 2 else delta


def _gob_uint(buf: bytes, pos: int) -> tuple[int, int] | None:
    """A gob-encoded unsigned integer at pos: (value, next position), None if cut short."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    width = 256 - first  # gob writes the negated byte count, then the big-endian bytes
    if width > 8 or pos + 1 + width > len(buf):
        return None
    return int.from_bytes(buf[pos + 1 : pos + 1 + width], "big"), pos + 1 + width


def _gob_string_after(body: bytes, key: bytes) -> str | None:
    """The gob string value following the gob string `key` in a features map body, as lossy text."""
    marker = bytes([len(key)]) + key
    at = body.find(marker)
    if at < 0:
        return None
    decoded = _gob_uint(body, at + len(marker))
    if decoded is None:
        return None
    length, start = decoded
    if start + length > len(body):
        return None
    # untrusted text from the wire: keep it, never interpret it
    return body[start : start + length].decode("utf-8", errors="replace")


def features_fields(body: bytes) -> dict[str, object]:
    """Name, NickName and ShortID from an unencrypted gob features map (only those fully captured)."""
    out: dict[str, object] = {}
    name = _gob_string_after(body, b"Name")
    if name is not None:
        out["ctl_peer_name"] = name
    nick = _gob_string_after(body, b"NickName")
    if nick is not None:
        out["ctl_nickname"] = nick
    short_id = _gob_string_after(body, b"ShortID")
    if short_id is not None and short_id.isascii() and short_id.isdigit() and len(short_id) <= 10:
        value = int(short_id)
        if value <= INT32_MAX:
            out["ctl_short_id"] = value
    return out


def _looks_like_features(body: bytes) -> bool:
    return GOB_MAP_STRING_STRING in body[:24]


class ControlTracker:
    """Per-direction stream state for TCP 6783, bounded: the least recently seen direction is evicted."""

    def __init__(self, max_directions: int = 4096) -> None:
        self.max_directions = max_directions
        self.directions: OrderedDict[ConnKey, Direction] = OrderedDict()
        self.evicted = 0

    def _direction(self, key: ConnKey) -> Direction:
        found = self.directions.get(key)
        if found is not None:
            self.directions.move_to_end(key)
            return found
        created = Direction()
        self.directions[key] = created
        if len(self.directions) > self.max_directions:
            self.directions.popitem(last=False)
            self.evicted += 1
        return created

    def segment(self, key: ConnKey, seq: int, payload: bytes, length: int, row: dict[str, object]) -> None:
        """Read one segment's payload (captured bytes; `length` by the headers) into the ctl_* fields of row."""
        d = self._direction(key)
        if payload[:5] == CONTROL_MAGIC:
            self._handshake(key, d, seq, payload, length, row)
            return
        if d.phase == "v1":
            row["ctl_msg"] = "data"  # version 1 is a bare gob stream: no boundaries to follow
            return
        if d.carry and d.expect is not None:
            carry, d.carry = d.carry, b""
            if seq % SEQ_MOD == d.expect:
                row["ctl_msg"] = "data"  # starts with the rest of a length prefix
                self._walk(d, seq - len(carry), carry + payload, length + len(carry), 0, row, at_start=False)
                return
            d.expect = None
        if d.expect is None:
            if not self._resync(d, seq, payload, length):
                row["ctl_msg"] = "data"
                return
        assert d.expect is not None
        delta = _signed(seq - d.expect)
        if delta == 0:
            self._walk(d, seq, payload, length, 0, row, at_start=True)
        elif delta < 0 < delta + length:
            row["ctl_msg"] = "data"  # overlaps the boundary: a message starts inside this segment
            self._walk(d, seq, payload, length, -delta, row, at_start=False)
        elif delta < 0:
            self._retransmission(d, seq, payload, length, row)
        else:
            # bytes went missing from the capture: only a segment that is clearly whole messages resyncs
            if self._resync(d, seq, payload, length):
                self._walk(d, seq, payload, length, 0, row, at_start=True)
            else:
                d.expect = None
                row["ctl_msg"] = "data"

    def _retransmission(self, d: Direction, seq: int, payload: bytes, length: int, row: dict[str, object]) -> None:
        """Old bytes again: named after the message it starts with if that start is remembered, else `data`."""
        kind = d.recent.get(seq % SEQ_MOD)
        if kind is None:
            row["ctl_msg"] = "data"
            return
        # read it on a scratch copy: a retransmission must not move the stream state
        scratch = replace(d, carry=b"", features_pending=kind == "features", phase="messages", recent=OrderedDict())
        self._walk(scratch, seq, payload, length, 0, row, at_start=True)

    def _handshake(
        self, key: ConnKey, d: Direction, seq: int, payload: bytes, length: int, row: dict[str, object]
    ) -> None:
        row["ctl_msg"] = "handshake"
        d.carry = b""
        if len(payload) > 5:
            row["ctl_proto_min"] = payload[5]
        if len(payload) <= 6:
            d.expect = None
            return
        d.version_max = payload[6]
        row["ctl_proto_max"] = payload[6]
        peer = self.directions.get((key[2], key[3], key[0], key[1]))
        version = d.version_max
        if peer is not None and peer.version_max >= 0:
            version = min(version, peer.version_max)  # both sides settle on the highest common version
        d.encrypted = -1
        if version < 2:
            d.phase = "v1"
            d.expect = None
            return
        d.phase = "flag"
        self._walk(d, seq, payload, length, 7, row, at_start=False)

    def _resync(self, d: Direction, seq: int, payload: bytes, length: int) -> bool:
        """Without a known boundary, accept a segment only if it is exactly whole length-prefixed messages."""
        pos = 0
        count = 0
        while pos < length and count < MAX_MESSAGES_PER_SEGMENT:
            if pos + 4 > len(payload):
                return False
            size = int.from_bytes(payload[pos : pos + 4], "big")
            if size == 0 or size > MAX_CONTROL_MESSAGE:
                return False
            pos += 4 + size
            count += 1
        if pos != length or count == 0:
            return False
        d.phase = "messages"
        d.pubkey_left = 0
        d.carry = b""
        d.features_pending = False  # whatever came first was missed
        d.expect = seq % SEQ_MOD
        return True

    def _walk(
        self,
        d: Direction,
        seq: int,
        payload: bytes,
        length: int,
        pos: int,
        row: dict[str, object],
        *,
        at_start: bool,
    ) -> None:
        """Consume the stream from offset pos of this segment, advancing d to the next boundary."""
        first = at_start
        count = 0
        while pos < length and count < MAX_MESSAGES_PER_SEGMENT:
            count += 1
            if d.phase == "flag":
                if pos >= len(payload):
                    d.expect = None
                    return
                flag = payload[pos]
                row.setdefault("ctl_encrypted", clip_int8(flag))
                if first:
                    row["ctl_msg"] = "handshake"
                    first = False
                pos += 1
                if flag == 0:
                    d.encrypted, d.phase, d.features_pending = 0, "messages", True
                elif flag == 1:
                    d.encrypted, d.phase, d.pubkey_left = 1, "pubkey", PUBLIC_KEY_LEN
                else:
                    d.expect = None
                    return
                continue
            if d.phase == "pubkey":
                if first:
                    row["ctl_msg"] = "handshake"
                    first = False
                take = min(d.pubkey_left, length - pos)
                pos += take
                d.pubkey_left -= take
                if d.pubkey_left == 0:
                    d.phase, d.features_pending = "messages", True
                continue
            if pos + 4 > length and len(payload) >= length:
                if first:
                    row["ctl_msg"] = "data"  # too short to tell which message starts here
                d.carry = payload[pos:length]  # TCP cut the length prefix: finish it with the next segment
                d.expect = (seq + length) % SEQ_MOD
                return
            if pos + 4 > len(payload):
                d.expect = None  # the length prefix is not captured (snaplen)
                return
            size = int.from_bytes(payload[pos : pos + 4], "big")
            if size > MAX_CONTROL_MESSAGE:
                d.expect = None
                return
            body = payload[pos + 4 : pos + 4 + size]
            kind = self._kind(d, body, size)
            if first:
                row["ctl_msg"] = kind
                first = False
            _fill(row, kind, body, size)
            d.features_pending = False
            d.recent[(seq + pos) % SEQ_MOD] = kind
            if len(d.recent) > RECENT_STARTS:
                d.recent.popitem(last=False)
            pos += 4 + size
        d.expect = (seq + pos) % SEQ_MOD

    @staticmethod
    def _kind(d: Direction, body: bytes, size: int) -> str:
        if not body:
            return "data"  # the body starts in a later segment (or is empty): nothing to name
        if d.encrypted == 1:
            return "encrypted"
        if d.features_pending and d.encrypted == 0:
            return "features"
        if _looks_like_features(body):
            return "features"
        tag = body[0]
        if d.encrypted == 0:
            if tag == TAG_HEARTBEAT:
                return "heartbeat"
            if tag == TAG_OVERLAY or tag in TAGS_LEGACY_SLEEVE:
                return "overlay_ctl"
            if tag in TAGS_GOSSIP:
                return "gossip"
            return "data"
        # encryption unknown (capture began mid-connection): accept only unmistakable plain shapes
        if size == 1 and tag == TAG_HEARTBEAT:
            return "heartbeat"
        if tag == TAG_OVERLAY and size in (3, 5, 67):
            return "overlay_ctl"
        if tag in TAGS_GOSSIP and len(body) >= 4 and body[2] == 0x0C and body[3] == 0:
            return "gossip"
        return "encrypted" if size >= SECRETBOX_MIN else "data"


def _fill(row: dict[str, object], kind: str, body: bytes, size: int) -> None:
    """Fields of one message; the first message of a kind in a segment wins."""
    if kind == "overlay_ctl" and "ctl_overlay_subtag" not in row:
        tag = body[0]
        if tag == TAG_OVERLAY:
            if len(body) >= 2:
                row["ctl_overlay_index"] = body[1]
            if len(body) >= 3:
                row["ctl_overlay_subtag"] = body[2]
                if body[2] == SUBTAG_PMTU_VERIFIED and size == 5 and len(body) >= 5:
                    row["ctl_pmtu"] = int.from_bytes(body[3:5], "big")
        else:
            row["ctl_overlay_subtag"] = tag  # legacy sleeve control: the tag is the sub-tag
            if tag == SUBTAG_PMTU_VERIFIED and size == 3 and len(body) >= 3:
                row["ctl_pmtu"] = int.from_bytes(body[1:3], "big")
    elif kind == "features":
        for name, value in features_fields(body).items():
            row.setdefault(name, value)
