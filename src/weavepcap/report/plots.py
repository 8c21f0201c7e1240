"""The report's four plots, drawn from the analysis JSON's data and returned as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import offset_copy

from weavepcap.classes import CLASS_NAMES

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
# deficiency and still apart in greyscale print when paired with distinct markers / line styles.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#F0E442",  # yellow: last, it is faint on white paper
)
BLUE, ORANGE, GREEN, VERMILLION, SKY_BLUE, PURPLE = OKABE_ITO[:6]
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")

# Fixed size and resolution so every report looks the same and PNGs are reproducible.
FIG_WIDTH_IN = 9.0
FIG_HEIGHT_IN = 4.8
DPI = 110
MAX_PANELS = 6  # host panels per figure; more hosts than this are listed in the caption instead

PlotData = Sequence[Mapping[str, Any]]


def _new_figure() -> Figure:
    fig = Figure(figsize=(FIG_WIDTH_IN, FIG_HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No Software/date metadata: the same analysis gives byte-identical PNGs.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _empty(fig: Figure, title: str, why: str) -> bytes:
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_axis_off()
    return _png(fig)


def _ordered(values: Sequence[str], order: Sequence[str] = ()) -> list[str]:
    """Distinct values, those named in `order` first in that order, the rest in first-seen order."""
    seen = dict.fromkeys(v for v in order if v in set(values))
    seen.update(dict.fromkeys(values))
    return list(seen)


def class_styles(classes: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A (colour, marker) per traffic class, stable in the classes' display order."""
    ordered = sorted(set(classes), key=lambda c: (CLASS_NAMES.index(c) if c in CLASS_NAMES else len(CLASS_NAMES), c))
    return {c: (OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]) for i, c in enumerate(ordered)}


def packet_sizes(packets: PlotData, paths: PlotData, host_order: Sequence[str] = ()) -> bytes:
    """Plot 1: packet size over time per host, coloured by class; path MTU and heartbeat size as lines,
    ICMP frag-needed as markers."""
    title = "Packet size over time"
    fig = _new_figure()
    hosts = _ordered([str(p["host"]) for p in packets], host_order)[:MAX_PANELS]
    if not hosts:
        return _empty(fig, title, "no packets in the analysis series")
    styles = class_styles([str(p["class"]) for p in packets])
    axes = fig.subplots(len(hosts), 1, sharex=True, squeeze=False)[:, 0]
    shown_labels: set[str] = set()
    for ax, host in zip(axes, hosts, strict=True):
        mine = [p for p in packets if p["host"] == host]
        for klass, (colour, marker) in styles.items():
            rows = [p for p in mine if p["class"] == klass]
            if not rows:
                continue
            is_icmp = klass in ("icmp.frag_needed", "icmpv6.packet_too_big")
            is_heartbeat = klass.endswith(".heartbeat")
            label = klass if klass not in shown_labels else None
            shown_labels.add(klass)
            ax.scatter(
                [r["t"] for r in rows],
                [r["size"] for r in rows],
                s=70 if is_icmp else 30 if is_heartbeat else 14,
                c=colour,
                marker="*" if is_icmp else marker,
                edgecolors="black" if is_icmp else "none",
                linewidths=0.5,
                label=label,
                zorder=3 if is_icmp else 2,
            )
        # Lines for the paths this host sends on: what the heartbeat is and what the path lets through.
        for path in paths:
            if path.get("src_host") != host:
                continue
            for key, name, style in (
                ("path_mtu_high", "path MTU (IP)", "-"),
                ("path_mtu_low", "path MTU lower bound (IP)", ":"),
                ("heartbeat_ip_len", "heartbeat IP length", "--"),
            ):
                value = path.get(key)
                if value is None:
                    continue
                label = f"{name} {value} B"
                ax.axhline(float(value), color="#444444", linestyle=style, linewidth=1.1, zorder=1,
                           label=label if label not in shown_labels else None)
                shown_labels.add(label)
        ax.set_ylabel("frame size (bytes)")
        ax.set_title(host, loc="left", fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time since analysis start (s)")
    fig.suptitle(title)
    fig.legend(loc="outside right upper", fontsize=7, markerscale=1.2, title="class", title_fontsize=8)
    return _png(fig)


def tx_rx_rates(rates: PlotData, host_order: Sequence[str] = ()) -> bytes:
    """Plot 2: transmitted vs received packets per second, one panel per host."""
    title = "Transmitted vs received packets per second"
    fig = _new_figure()
    hosts = _ordered([str(r["host"]) for r in rates], host_order)[:MAX_PANELS]
    if not hosts:
        return _empty(fig, title, "no per-second rates in the analysis series")
    axes = fig.subplots(len(hosts), 1, sharex=True, squeeze=False)[:, 0]
    for ax, host in zip(axes, hosts, strict=True):
        rows = sorted((r for r in rates if r["host"] == host), key=lambda r: r["second"])
        # Each count covers [second, second + 1): repeat the last one so the final second gets its width.
        seconds = [r["second"] for r in rows] + [rows[-1]["second"] + 1]
        tx = [r["tx"] for r in rows] + [rows[-1]["tx"]]
        rx = [r["rx"] for r in rows] + [rows[-1]["rx"]]
        # Solid vs dashed as well as colour, so the two series stay apart in greyscale print.
        ax.step(seconds, tx, where="post", color=VERMILLION, linewidth=1.6, label="transmitted (tx)")
        ax.step(seconds, rx, where="post", color=BLUE, linewidth=1.6, linestyle="--", label="received (rx)")
        ax.set_ylabel("packets/s")
        ax.set_ylim(bottom=0)
        ax.set_title(host, loc="left", fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time since analysis start (s)")
    fig.suptitle(title)
    return _png(fig)


def heartbeat_ladder(heartbeats: PlotData, host_order: Sequence[str] = ()) -> bytes:
    """Plot 3: each heartbeat as an arrow from the sender's lane to the receiver's over time; a lost one
    is an X at the sender with a dashed stub towards the receiver."""
    title = "Heartbeat ladder"
    fig = _new_figure()
    hosts = _ordered([str(h["src_host"]) for h in heartbeats] + [str(h["dst_host"]) for h in heartbeats], host_order)
    if not hosts:
        return _empty(fig, title, "no heartbeats in the analysis series")
    # Time runs along the wide axis so a minute of 0.5 s heartbeats stays legible; hosts are lanes.
    lane = {h: float(len(hosts) - 1 - i) for i, h in enumerate(hosts)}
    kinds = _ordered([str(h.get("kind", "?")) for h in heartbeats], ("fastdp", "sleeve"))
    kind_colour = {k: (BLUE, ORANGE, GREEN, PURPLE)[i % 4] for i, k in enumerate(kinds)}
    ax = fig.add_subplot()
    # fastdp and sleeve heartbeats often leave together: nudge each kind a few points sideways so one
    # does not hide the other (a display offset only; the data keep their times).
    nudge = {k: offset_copy(ax.transData, fig=fig, x=3.0 * (i - (len(kinds) - 1) / 2), units="points")
             for i, k in enumerate(kinds)}
    for y in lane.values():
        ax.axhline(y, color="#888888", linewidth=1.0, zorder=0)
    stub = 0.3  # how far towards the receiver a lost heartbeat's dashed stub reaches (lane units)
    labelled: set[tuple[str, object]] = set()
    for hb in heartbeats:
        y0, y1 = lane[str(hb["src_host"])], lane[str(hb["dst_host"])]
        kind = str(hb.get("kind", "?"))
        colour = kind_colour[kind]
        if hb.get("t_sent") is None:
            # Seen only where it arrived (no capture of the sender): a stub into the receiver's lane.
            if hb.get("t_received") is None:
                continue
            t1 = float(hb["t_received"])
            direction = 1.0 if y0 >= y1 else -1.0
            label = None
            if (kind, "unsent") not in labelled:
                labelled.add((kind, "unsent"))
                label = f"{kind} heartbeat received (sender not captured)"
            ax.plot([t1, t1], [y1 + direction * stub, y1], color=colour, linewidth=0.9, label=label,
                    marker="v" if direction > 0 else "^", markevery=[1], markersize=4, transform=nudge[kind])
            continue
        t0, t1 = float(hb["t_sent"]), hb.get("t_received")
        if t1 is None and hb.get("receiver_captured") is False:
            # No capture of the receiver: its fate is unknown, so it is not drawn as lost.
            label = None
            if (kind, "unknown") not in labelled:
                labelled.add((kind, "unknown"))
                label = f"{kind} heartbeat sent, receiver not captured"
            direction = 1.0 if y1 >= y0 else -1.0
            ax.plot([t0, t0], [y0, y0 + direction * stub], color="#888888", linestyle=":", linewidth=0.9,
                    label=label, transform=nudge[kind])
            continue
        lost = t1 is None
        label = None
        if (kind, lost) not in labelled:
            labelled.add((kind, lost))
            label = f"{kind} heartbeat {'lost (dashed stub)' if lost else 'received'}"
        if lost:
            direction = 1.0 if y1 >= y0 else -1.0
            ax.plot([t0, t0], [y0, y0 + direction * stub], color=colour, linestyle="--", linewidth=0.9, label=label,
                    transform=nudge[kind])
            ax.plot([t0], [y0], marker="x", color=VERMILLION, markersize=6, markeredgewidth=1.4, linestyle="none",
                    transform=nudge[kind])
        else:
            ax.annotate(
                "",
                xy=(float(t1), y1),
                xytext=(t0, y0),
                xycoords=nudge[kind],
                textcoords=nudge[kind],
                arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 0.8, "shrinkA": 0, "shrinkB": 0,
                            "mutation_scale": 7},
            )
            ax.plot([], [], color=colour, linewidth=1.2, label=label)  # legend entry for the arrows
    if any(hb.get("t_received") is None and hb.get("t_sent") is not None and hb.get("receiver_captured") is not False
           for hb in heartbeats):
        ax.plot([], [], marker="x", color=VERMILLION, linestyle="none", label="lost: X at the sender")
    ax.set_yticks(list(lane.values()), [h if len(h) <= 24 else h[:23] + "…" for h in hosts], fontsize=8)
    ax.set_ylim(-0.5, len(hosts) - 0.5)
    times = [float(t) for h in heartbeats
             if (t := h["t_sent"] if h.get("t_sent") is not None else h.get("t_received")) is not None] or [0.0]
    margin = max(0.5, 0.02 * (max(times) - min(times)))
    ax.set_xlim(min(times) - margin, max(times) + margin)
    ax.set_xlabel("time since analysis start (s)")
    ax.set_ylabel("host")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=3, fontsize=7)
    return _png(fig)


def class_mix(captures: PlotData) -> bytes:
    """Plot 4: traffic class mix per capture, as stacked horizontal bars of the share of frames."""
    title = "Traffic class mix per capture"
    fig = _new_figure()
    rows = [c for c in captures if c.get("classes")]
    if not rows:
        return _empty(fig, title, "no traffic classes in the analysis")
    styles = class_styles([k for c in rows for k in c["classes"]])
    ax = fig.add_subplot()
    names = [str(c.get("name", "?")) for c in rows]
    labels = [n if len(n) <= 30 else n[:29] + "…" for n in names]
    # Ten hatches against eight colours: no two of the first forty classes share both.
    hatches = ("", "//", "..", "xx", "\\\\", "++", "oo", "--", "||", "**")
    lefts = [0.0] * len(rows)
    for i, (klass, (colour, _marker)) in enumerate(styles.items()):
        widths = []
        for c in rows:
            total = sum(int(v.get("frames", 0)) for v in c["classes"].values()) or 1
            widths.append(100.0 * int(c["classes"].get(klass, {}).get("frames", 0)) / total)
        # Hatching repeats the colour's information for greyscale print.
        ax.barh(labels, widths, left=lefts, color=colour, hatch=hatches[i % len(hatches)],
                edgecolor="white", linewidth=0.5, label=klass)
        lefts = [a + b for a, b in zip(lefts, widths, strict=True)]
    for y, c in enumerate(rows):
        ax.annotate(f"{int(c.get('frames', 0)):,} frames", xy=(100.0, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7, annotation_clip=False)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the capture's frames (%)")
    ax.invert_yaxis()  # first capture on top, as in the table
    ax.set_title(title)
    fig.legend(loc="outside right upper", fontsize=7, title="class", title_fontsize=8)
    return _png(fig)


# The report's figures in display order: file name (with --plots), heading, builder from the analysis dict.
def build_all(doc: Mapping[str, Any]) -> list[tuple[str, str, str, bytes]]:
    """Every plot of an analysis as (file name, title, description, PNG bytes), in report order."""
    series = doc.get("series") or {}
    host_order = [str(h.get("name")) for h in doc.get("hosts") or []]
    return [
        (
            "1-packet-sizes.png",
            "Packet size over time",
            "Each packet per host over time (frame size on the wire), coloured by traffic class; lines mark "
            "the path MTU and the heartbeat's IP packet length (a frame is 14 bytes longer); stars are ICMP frag-needed.",
            packet_sizes(series.get("packets") or [], doc.get("paths") or [], host_order),
        ),
        (
            "2-tx-rx-rates.png",
            "Transmitted vs received packets per second",
            "A host whose transmissions stop while its receptions continue shows a solid line falling to zero.",
            tx_rx_rates(series.get("rates") or [], host_order),
        ),
        (
            "3-heartbeat-ladder.png",
            "Heartbeat ladder",
            "Each heartbeat from sender to receiver; a lost one is an X at the sender with a dashed stub.",
            heartbeat_ladder(series.get("heartbeats") or [], host_order),
        ),
        (
            "4-class-mix.png",
            "Traffic class mix per capture",
            "Share of each capture's frames per traffic class.",
            class_mix(doc.get("captures") or []),
        ),
    ]
