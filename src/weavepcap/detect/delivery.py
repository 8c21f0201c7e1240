"""Which packets that left one host reached the other: the same packet matched across captures, clocks aligned."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weavepcap.detect.base import Timeline, text
from weavepcap.timeline import MATCH_KEY

# Classes whose loss means something (data classes are too many to match one by one, and ESP/data loss
# shows in the rates instead).
DELIVERY_CLASSES: tuple[str, ...] = (
    "weave.fastdp.heartbeat",
    "weave.fastdp.esp",
    "weave.sleeve.heartbeat",
    "weave.sleeve.fragtest",
    "weave.sleeve.pmtu_verify",
    "weave.sleeve.pmtu_discovery",
    "weave.control",
    "weave.control.heartbeat",
    "ip.fragment",
)
END_GRACE_NS = 200_000_000  # a packet sent this close to the end of the receiver's capture may still arrive


def match_delivery(tl: Timeline) -> pd.DataFrame:
    """Per transmitted special packet toward a captured host: `checkable`, `delivered`, rx frame/capture/time.

    Identical packets (same key) pair up in order of time on both sides, so N identical heartbeats
    sent and M < N received count M as delivered.
    """
    cols = ["checkable", "delivered", "rx_capture", "rx_frame", "rx_t_ns"]
    pk = tl.packets
    if pk.empty:
        return pd.DataFrame(columns=cols)
    klass = text(pk["klass"])
    dst_host = text(pk["dst_host"])
    direction = text(pk["dir"])
    wanted = np.isin(klass, DELIVERY_CLASSES)
    captured = np.isin(dst_host, sorted(tl.captured_hosts))
    tx = pk[wanted & (direction == "tx") & captured]
    if tx.empty:
        return pd.DataFrame(columns=cols)
    protos = tx["ip_proto"].unique()
    rx = pk[(direction == "rx") & pk["ip_proto"].isin(protos).to_numpy()]
    key = list(MATCH_KEY)
    tx_keyed = tx[key + ["t_ns", "dst_host"]].copy()
    for c in ("ip_src", "ip_dst"):
        tx_keyed[c] = text(tx_keyed[c])
    tx_keyed["dst_host"] = text(tx_keyed["dst_host"])
    tx_keyed["rank"] = tx_keyed.groupby(key + ["dst_host"], sort=False).cumcount()
    tx_keyed["row"] = tx.index.to_numpy()
    rx_keyed = rx[key + ["t_ns", "host", "capture", "frame"]].copy()
    for c in ("ip_src", "ip_dst", "host", "capture"):
        rx_keyed[c] = text(rx_keyed[c])
    rx_keyed = rx_keyed.rename(columns={"host": "dst_host", "t_ns": "rx_t_ns", "capture": "rx_capture",
                                        "frame": "rx_frame"})
    # The same packet captured twice at the receiver (e.g. on two interfaces) counts once.
    rx_keyed = rx_keyed.drop_duplicates(key + ["dst_host", "rx_t_ns"])
    rx_keyed["rank"] = rx_keyed.groupby(key + ["dst_host"], sort=False).cumcount()
    merged = tx_keyed.merge(rx_keyed, on=key + ["dst_host", "rank"], how="left")
    first = merged["dst_host"].map({h: s[0] for h, s in tl.spans.items()}).fillna(0).to_numpy()
    last = merged["dst_host"].map({h: s[1] for h, s in tl.spans.items()}).fillna(0).to_numpy()
    grace = merged["dst_host"].map(
        {h: END_GRACE_NS + int((i.clock_offset_uncertainty_s or 0.0) * 1e9) for h, i in tl.hosts.items()}
    ).fillna(END_GRACE_NS).to_numpy()
    t = merged["t_ns"].to_numpy()
    delivered = merged["rx_frame"].notna().to_numpy()
    checkable = delivered | ((t >= first - grace) & (t <= last - grace))
    out = pd.DataFrame(
        {
            "checkable": checkable,
            "delivered": delivered,
            "rx_capture": merged["rx_capture"].fillna("").to_numpy(),
            "rx_frame": merged["rx_frame"].fillna(-1).astype("int64").to_numpy(),
            "rx_t_ns": merged["rx_t_ns"].fillna(-1).astype("int64").to_numpy(),
        },
        index=merged["row"].to_numpy(),
    )
    return out
