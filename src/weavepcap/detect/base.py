"""What every detector shares: the aligned table with its hosts, event-table construction, display filters."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weavepcap.classes import class_filter
from weavepcap.model import HostInfo
from weavepcap.settings import Settings

EVENT_COLUMNS: tuple[str, ...] = (
    "t_ns",  # aligned time, ns since the epoch on the reference host's clock
    "host",  # host whose capture holds the frame
    "capture",  # capture display name
    "frame",  # 1-based frame number in that capture
    "event",  # a name from detect.EVENTS
    "message",  # one readable sentence
    "filter",  # Wireshark display filter that shows the frame
    "src_host",  # host the packet came from ("" if unknown)
    "dst_host",  # host the packet went to ("" if unknown)
    "attrs",  # dict of the numbers the event quotes
)


@dataclass
class Timeline:
    """The aligned packet table of all hosts plus what detectors need to know about the hosts."""

    packets: pd.DataFrame
    hosts: dict[str, HostInfo]
    settings: Settings
    # host -> (first, last) aligned time its captures cover
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    # per transmitted special packet: was it seen at the receiving host? (index = packets index)
    delivery: pd.DataFrame = field(default_factory=pd.DataFrame)

    # memo of derived tables several detectors and rules share (acks, path summaries, per-pair rows)
    cache: dict[str, object] = field(default_factory=dict)

    def pair_rows(self, src_addr: str, dst_addr: str) -> np.ndarray:
        """Positions (iloc) of the packets from src_addr to dst_addr, from one hash grouping of the table."""
        groups = self.cache.get("pairs")
        if groups is None:
            if self.packets.empty:
                groups = {}
            else:
                keys = pd.DataFrame({"s": text(self.packets["ip_src"]), "d": text(self.packets["ip_dst"])})
                groups = keys.groupby(["s", "d"], sort=False).indices
            self.cache["pairs"] = groups
        return groups.get((src_addr, dst_addr), np.zeros(0, dtype=np.int64))  # type: ignore[union-attr]

    def text(self, column: str, rows: pd.DataFrame | None = None) -> np.ndarray:
        frame = self.packets if rows is None else rows
        return text(frame[column])

    @property
    def captured_hosts(self) -> set[str]:
        return {h for h, info in self.hosts.items() if info.captures}


def text(series: pd.Series) -> np.ndarray:
    """A text column as a numpy array of str, whatever pandas dtype it arrived in.

    `timeline.align` already stores text columns as plain object arrays of str, so on the aligned
    table this is free; other dtypes (category, arrow strings) are converted.
    """
    if series.dtype == object:
        return series.to_numpy()
    return series.to_numpy(dtype=object, na_value="")


def empty_events() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("t_ns", "frame") else object) for c in EVENT_COLUMNS})


def make_events(
    rows: pd.DataFrame,
    event: str,
    message: pd.Series | np.ndarray | list[str] | str,
    proto_filter: str | np.ndarray | list[str],
    attrs: list[dict[str, object]] | None = None,
) -> pd.DataFrame:
    """Events citing each of `rows` (rows of the aligned packet table); `proto_filter` one for all or one per row."""
    n = len(rows)
    if n == 0:
        return empty_events()
    frames = rows["frame"].to_numpy().astype("int64")
    frame_filter = np.char.add("frame.number == ", frames.astype(str))
    if isinstance(proto_filter, str):
        if proto_filter:
            frame_filter = np.char.add(frame_filter, " && " + proto_filter)
    else:
        extra = np.asarray(proto_filter, dtype=str)
        frame_filter = np.where(extra != "", np.char.add(np.char.add(frame_filter, " && "), extra), frame_filter)
    msg = np.full(n, message, dtype=object) if isinstance(message, str) else np.asarray(message, dtype=object)
    return pd.DataFrame(
        {
            "t_ns": rows["t_ns"].to_numpy().astype("int64"),
            "host": text(rows["host"]),
            "capture": text(rows["capture"]),
            "frame": frames,
            "event": event,
            "message": msg,
            "filter": frame_filter.astype(object),
            "src_host": text(rows["src_host"]),
            "dst_host": text(rows["dst_host"]),
            "attrs": attrs if attrs is not None else [{} for _ in range(n)],
        }
    )


def label(hosts: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Host name where known, else the address."""
    return np.where(hosts != "", hosts, addrs)


def join_text(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise concatenation of string arrays and constants (vectorised message building)."""
    out: np.ndarray | str = ""
    for part in parts:
        piece = part if isinstance(part, str) else np.asarray(part).astype(str)
        out = np.char.add(out, piece)
    return np.asarray(out, dtype=object)


def row_filters(rows: pd.DataFrame, settings: Settings) -> list[str]:
    """A display filter fragment per row: its class's, else by protocol (icmp / tcp.port / udp.port)."""
    out = []
    for k, proto, sport, dport in zip(text(rows["klass"]), rows["ip_proto"].to_numpy(), rows["sport"].to_numpy(),
                                      rows["dport"].to_numpy(), strict=True):
        flt = class_filter(str(k), settings)
        if not flt:
            port = min(p for p in (int(sport), int(dport), 1 << 16) if p > 0)
            flt = ({1: "icmp", 58: "icmpv6"}.get(int(proto), "")
                   or (f"tcp.port == {port}" if proto == 6 and port < 1 << 16 else "")
                   or (f"udp.port == {port}" if proto == 17 and port < 1 << 16 else ""))
        out.append(flt)
    return out
