"""HTML incident report and plots: content, escaping, self-containment, golden file, CLI."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg
from typer.testing import CliRunner

from weavepcap.cli import app
from weavepcap.report import plots
from weavepcap.report.htmlreport import (
    AnalysisFileError,
    Figure,
    figures,
    load_analysis,
    render_html,
    write_html,
    write_plots,
)

FIXTURES = Path(__file__).parent / "fixtures"
GOLD = Path(__file__).parent / "gold"
ACTUAL = Path(__file__).parent / "actual"  # git-ignored: where a mismatching golden render is left for review
FIXTURE_NAMES = ("p2-fault", "p1-stall", "healthy", "xss")
PLOT_FILES = ("1-packet-sizes.png", "2-tx-rx-rates.png", "3-heartbeat-ladder.png", "4-class-mix.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"analysis-{name}.json").read_text(encoding="utf-8"))


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser


def png_pixels(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png), format="png")


@pytest.fixture(scope="module")
def some_figures() -> list[Figure]:
    """Plots drawn once, for tests about the page rather than the pictures (drawing is the slow part)."""
    return figures(fixture("healthy"))


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {name: render_html(fixture(name)) for name in FIXTURE_NAMES}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_verdict_comes_first_and_every_section_is_there(rendered: dict[str, str], name: str) -> None:
    html = rendered[name]
    doc = fixture(name)
    page = parse(html)
    text = " ".join(page.text)
    assert doc["verdict"]["headline"] in text
    ids = [attrs.get("id") for _tag, attrs in page.tags if attrs.get("id")]
    # The verdict precedes the story and the evidence, which precede the pictures.
    for later in ("story", "findings", "paths", "captures", "hosts", "ruled-out", "caveats", "plots"):
        assert later in ids
        assert ids.index("verdict") < ids.index(later)
    assert ids.index("story") < ids.index("plots")
    for rule in doc["ruled_out"]:
        assert rule["reason"] in text
    for caveat in doc["caveats"]:
        assert caveat in text
    for capture in doc["captures"]:
        assert capture["name"] in text


def test_verdict_block_carries_confidence_hosts_path_start_and_fix(rendered: dict[str, str]) -> None:
    html = rendered["p2-fault"]
    verdict = html[html.index('id="verdict"') : html.index("</section>")]
    assert "92 %" in verdict
    assert "host-a, host-b" in verdict
    assert "host-a -&gt; host-b" in verdict
    assert "2026-11-27T13:00:01.000000Z" in verdict
    assert "WEAVE_MTU=1404" in verdict


def test_healthy_verdict_is_not_styled_as_a_fault(rendered: dict[str, str]) -> None:
    assert 'class="verdict ok"' in rendered["healthy"]
    assert 'class="verdict ok"' not in rendered["p2-fault"]


def test_story_is_in_time_order_and_cites_capture_frame_and_filter(some_figures: list[Figure]) -> None:
    doc = fixture("p2-fault")
    doc["timeline"].reverse()  # the report orders by time itself, whatever order the JSON had
    html = render_html(doc, some_figures)
    story = html[html.index('id="story"') : html.index('id="findings"')]
    times = re.findall(r"<td class=\"num\" data-sort=\"([0-9.]+)\">", story)
    assert [float(t) for t in times] == sorted(times_of_first_events := [float(t) for t in times])
    assert set(times_of_first_events) <= {e["t"] for e in doc["timeline"]}
    assert "frame.number == 7 &amp;&amp; icmp.type == 3 &amp;&amp; icmp.code == 4" in story
    assert "host-a-lo.pcap" in story


def test_long_story_is_cut_with_a_count_of_what_is_left(some_figures: list[Figure]) -> None:
    doc = fixture("healthy")
    event = doc["timeline"][0]
    # Alternating kinds of event on one host never collapse: 600 rows, 500 shown.
    doc["timeline"] = [dict(event, t=i * 0.001, frame=i + 1, event=("a.one", "a.two")[i % 2]) for i in range(600)]
    html = render_html(doc, some_figures)
    assert "100 more rows are in the analysis JSON" in html


def test_repeated_events_are_one_expandable_row(some_figures: list[Figure]) -> None:
    doc = fixture("healthy")
    event = doc["timeline"][0]
    doc["timeline"] = [dict(event, t=i * 0.5, frame=2 * i + 1, filter=f"frame.number == {2 * i + 1} && icmp")
                       for i in range(12)]
    html = render_html(doc, some_figures)
    story = html[html.index('id="story"') : html.index('id="findings"')]
    assert story.count('<tr class="run">') == 1 and "&times;&nbsp;12" in story
    assert "frame.number in {1,3,5,7,9,11,13,15,17,19,21,23} &amp;&amp; icmp" in story
    assert story.count("<li>") == 12  # the single events, inside the expandable row


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_the_page_is_self_contained(rendered: dict[str, str], name: str) -> None:
    html = rendered[name]
    page = parse(html)
    for tag, attrs in page.tags:
        for attr in ("src", "href", "srcset", "action", "data", "poster", "background"):
            value = attrs.get(attr)
            if value is None:
                continue
            assert value.startswith(("data:image/png;base64,", "#")), f"<{tag} {attr}={value[:60]!r}> leaves the file"
    assert not page.named("link") and not page.named("iframe") and not page.named("object")
    assert "url(" not in html and "@import" not in html and "@font-face" not in html
    csp = [a["content"] for a in page.named("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_all_four_plots_are_embedded_as_decodable_pngs(rendered: dict[str, str], name: str) -> None:
    images = parse(rendered[name]).named("img")
    assert len(images) == 4
    for attrs in images:
        src = attrs["src"] or ""
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(PNG_MAGIC)
        pixels = png_pixels(png)
        assert pixels.shape[:2] == (round(plots.FIG_HEIGHT_IN * plots.DPI), round(plots.FIG_WIDTH_IN * plots.DPI))
        assert float(pixels[..., :3].std()) > 0.05  # not a blank canvas
        assert attrs.get("alt")


def test_script_and_markup_from_the_capture_are_escaped(rendered: dict[str, str]) -> None:
    doc = fixture("xss")
    html = rendered["xss"]
    page = parse(html)
    # The only script is our own table sorter; no injected element or handler survives as markup.
    assert len(page.named("script")) == 1
    assert len(page.named("img")) == 4
    for tag in ("svg", "iframe", "b"):
        assert not page.named(tag), f"<{tag}> from the analysis became markup"
    for _tag, attrs in page.tags:
        assert not [a for a in attrs if a.startswith("on")], f"event handler attribute in {attrs}"
        assert "PWNED" not in (attrs.get("id") or "")
    text = "".join(page.text)
    # The crafted strings are shown to the reader as text, verbatim.
    for crafted in (doc["hosts"][0]["name"], doc["hosts"][1]["nicknames"][0], doc["captures"][0]["name"],
                    doc["verdict"]["headline"], doc["caveats"][-1]):
        assert crafted in text
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in html


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_version_and_generation_time_appear_once(rendered: dict[str, str], name: str) -> None:
    html = rendered[name]
    assert html.count("2026-11-27T13:05:00Z") == 1
    assert len(re.findall(r"\b0\.1\.0\b", html)) == 1


def scrub(html: str) -> str:
    """Remove what changes between runs or library versions: generation time, version, PNG bytes."""
    html = re.sub(r'(<time id="generated-at">)[^<]*(</time>)', r"\1GENERATED_AT\2", html)
    html = re.sub(r'(<span id="tool">weavepcap )[^<]*(</span>)', r"\1VERSION\2", html)
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,PNG", html)


def test_golden_report_matches_after_scrubbing(some_figures: list[Figure]) -> None:
    """The p2 fixture's page, scrubbed, equals tests/gold/report-p2-fault.html.
    After a deliberate change: WEAVEPCAP_UPDATE_GOLD=1 python -m pytest tests/test_report.py, then review the diff."""
    doc = fixture("p2-fault")
    doc["generated_at"] = "2030-01-01T00:00:00Z"
    doc["tool"]["version"] = "9.9.9"
    actual = scrub(render_html(doc, some_figures))  # the PNG bytes are scrubbed: any plots will do
    gold = GOLD / "report-p2-fault.html"
    if os.environ.get("WEAVEPCAP_UPDATE_GOLD"):
        gold.parent.mkdir(exist_ok=True)
        gold.write_text(actual, encoding="utf-8")
    expected = gold.read_text(encoding="utf-8")
    if actual != expected:
        ACTUAL.mkdir(exist_ok=True)
        (ACTUAL / gold.name).write_text(actual, encoding="utf-8")
    assert actual == expected, f"report differs from {gold.name}; the new render is in tests/actual/{gold.name}"
    assert "9.9.9" not in actual and "2030-01-01" not in actual


def test_plots_are_reproducible_byte_for_byte() -> None:
    heartbeats = fixture("p1-stall")["series"]["heartbeats"]
    assert plots.heartbeat_ladder(heartbeats) == plots.heartbeat_ladder(heartbeats)


def _colour_pixels(png: bytes, hex_colour: str, tolerance: float = 0.04) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255.0 for i in (1, 3, 5)])
    pixels = png_pixels(png)[..., :3]
    return int((np.abs(pixels - rgb).max(axis=-1) < tolerance).sum())


def test_ladder_marks_lost_heartbeats_only_when_some_are_lost() -> None:
    lost = plots.heartbeat_ladder(fixture("p2-fault")["series"]["heartbeats"])
    all_received = plots.heartbeat_ladder(fixture("healthy")["series"]["heartbeats"])
    assert _colour_pixels(lost, plots.VERMILLION) > 200  # the X markers at the senders
    assert _colour_pixels(all_received, plots.VERMILLION) == 0


def test_packet_size_plot_draws_frag_needed_only_where_there_is_some() -> None:
    doc = fixture("p2-fault")
    packets = doc["series"]["packets"]
    styles = plots.class_styles([p["class"] for p in packets])
    icmp_colour = styles["icmp.frag_needed"][0]
    with_icmp = plots.packet_sizes(packets, doc["paths"])
    without = plots.packet_sizes([p for p in packets if p["class"] != "icmp.frag_needed"], doc["paths"])
    assert _colour_pixels(with_icmp, icmp_colour) > 2 * _colour_pixels(without, icmp_colour) + 100


def test_plots_of_an_empty_analysis_say_so_instead_of_failing() -> None:
    for png in (plots.packet_sizes([], []), plots.tx_rx_rates([]), plots.heartbeat_ladder([]), plots.class_mix([])):
        assert png.startswith(PNG_MAGIC)


def test_class_colours_follow_the_display_order_and_are_colour_blind_safe() -> None:
    styles = plots.class_styles(["other", "weave.fastdp.heartbeat", "weave.control"])
    assert list(styles) == ["weave.control", "weave.fastdp.heartbeat", "other"]
    assert {colour for colour, _marker in styles.values()} <= set(plots.OKABE_ITO)


def test_write_html_writes_the_page_and_the_png_files(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "incident.html"
    write_html(fixture("p2-fault"), out, plots_dir=tmp_path / "plots")
    assert "<!DOCTYPE html>" in out.read_text(encoding="utf-8")
    for name in PLOT_FILES:
        assert (tmp_path / "plots" / name).read_bytes().startswith(PNG_MAGIC)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_write_html_to_an_impossible_place_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AnalysisFileError) as excinfo:
        write_html(fixture("healthy"), blocker / "report.html")
    assert "\n" not in str(excinfo.value)


def test_load_analysis_refuses_what_it_cannot_render(tmp_path: Path) -> None:
    cases = {"broken.json": "{", "list.json": "[1, 2]", "future.json": json.dumps({"format_version": 2, "verdict": {}})}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(AnalysisFileError, match=re.escape(name)):
            load_analysis(tmp_path / name)
    assert load_analysis(FIXTURES / "analysis-healthy.json")["format_version"] == 1


def test_cli_report_renders_a_saved_analysis(tmp_path: Path) -> None:
    out, plots_dir = tmp_path / "r.html", tmp_path / "plots"
    result = CliRunner().invoke(
        app, ["report", str(FIXTURES / "analysis-p1-stall.json"), "--html", str(out), "--plots", str(plots_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "node-2 stopped transmitting" in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in plots_dir.iterdir()) == list(PLOT_FILES)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.json", None, "cannot read"),
        ("broken.json", '{"format_version": 1,', "not JSON"),
        ("future.json", json.dumps({"format_version": 99, "verdict": {}}), "unsupported format_version 99"),
        ("malformed.json", json.dumps({"format_version": 1, "verdict": {}, "series": {"packets": [{"t": 1}]}}), "malformed"),
    ],
)
def test_cli_report_bad_input_is_one_line_and_exit_3(tmp_path: Path, name: str, content: str | None, expected: str) -> None:
    source = tmp_path / name
    if content is not None:
        source.write_text(content)
    result = CliRunner().invoke(app, ["report", str(source), "--html", str(tmp_path / "out.html")])
    assert result.exit_code == 3
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("weavepcap: error: ") and expected in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.html").exists()


def test_write_plots_writes_only_the_pngs(tmp_path: Path) -> None:
    written = write_plots(fixture("healthy"), tmp_path / "plots")
    assert [p.name for p in written] == list(PLOT_FILES)
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in written)
    assert not list(tmp_path.glob("*.html"))
