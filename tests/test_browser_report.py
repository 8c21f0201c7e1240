"""The HTML report in real headless Chromium: it renders, shows verdict and plots, fetches nothing, runs no injected script."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLES, need, need_tool
from PIL import Image

from weavepcap.report import plots
from weavepcap.report.htmlreport import write_html

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).parent / "fixtures"
BROWSER_TIMEOUT_S = 60
SETTLE_S = 0.5  # after the load event, how long to keep listening for late requests
WINDOW = (1280, 7000)  # tall enough that the whole report, plots included, is in one screenshot
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)


class Page:
    """What Chromium made of a page: the requests it issued, its rendered DOM and title, its images."""

    def __init__(self, requests: list[str], html: str, title: str, images: list[tuple[bool, int]]) -> None:
        self.requests = requests
        self.html = html
        self.title = title
        self.images = images  # (complete, naturalWidth) per <img>: width 0 means it did not decode

    @property
    def remote_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(("file:", "data:"))]


def open_in_chromium(tmp_path: Path, page: Path) -> Page:
    """Load `page` in headless Chromium driven over the DevTools protocol (--remote-debugging-pipe).

    Network.requestWillBeSent lists every request the page itself issues (the browser's own update and
    time checks belong to other targets and are not counted), so a request to anything but file: or
    data: is a request off the file. Host names resolve to nothing, so none can leave the machine.
    """
    binary = need_tool("chromium")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # The protocol pipe is fds 3 (commands in) and 4 (replies out) in the browser. Its ends are first
    # moved above 100 so that placing one on 3 or 4 cannot clobber the other.
    browser_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 100)
    browser_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 100)
    os.close(to_browser_r)
    os.close(from_browser_w)

    def place_pipe() -> None:  # runs in the child before exec; dup2 leaves 3 and 4 inheritable
        os.dup2(browser_in, 3)
        os.dup2(browser_out, 4)

    args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
            "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
                            preexec_fn=place_pipe, start_new_session=True)
    os.close(browser_in)
    os.close(browser_out)
    deadline = time.monotonic() + BROWSER_TIMEOUT_S
    buffer = b""
    messages: list[dict[str, Any]] = []
    next_id = 0

    def receive_until(done: Callable[[dict[str, Any]], bool], until: float) -> dict[str, Any] | None:
        nonlocal buffer
        while True:
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                messages.append(message)
                if done(message):
                    return message
            left = until - time.monotonic()
            if left <= 0:
                return None
            ready, _w, _x = select.select([from_browser_r], [], [], left)
            if ready:
                chunk = os.read(from_browser_r, 1 << 20)
                if not chunk:
                    pytest.fail("chromium closed the DevTools pipe")
                buffer += chunk

    def call(method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        nonlocal next_id
        next_id += 1
        request: dict[str, Any] = {"id": next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(to_browser_w, json.dumps(request).encode() + b"\0")
        reply = receive_until(lambda m, wanted=next_id: m.get("id") == wanted, deadline)
        if reply is None:
            pytest.fail(f"chromium did not answer {method} within {BROWSER_TIMEOUT_S} s")
        assert "error" not in reply, reply
        return reply["result"]

    try:
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        call("Network.enable", session=session)
        call("Page.enable", session=session)
        call("Page.navigate", {"url": page.as_uri()}, session=session)
        if receive_until(lambda m: m.get("method") == "Page.loadEventFired", deadline) is None:
            pytest.fail(f"{page.name} did not finish loading within {BROWSER_TIMEOUT_S} s")
        receive_until(lambda m: False, min(deadline, time.monotonic() + SETTLE_S))  # late requests, if any
        probe = (
            "JSON.stringify({html: document.documentElement.outerHTML, title: document.title,"
            " images: Array.from(document.images).map(i => [i.complete, i.naturalWidth])})"
        )
        result = call("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session)
        state = json.loads(result["result"]["value"])
        requests = [m["params"]["request"]["url"] for m in messages if m.get("method") == "Network.requestWillBeSent"]
        call("Browser.close")
        proc.wait(timeout=10)
        return Page(requests, state["html"], state["title"], [tuple(i) for i in state["images"]])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        os.close(to_browser_w)
        os.close(from_browser_r)


def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once on `url`, bounded in time; the process group is killed on timeout."""
    binary = need_tool("chromium")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT_S} s on {url}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@dataclass
class Dom:
    """The rendered DOM as Chromium dumped it: elements with attributes, the title, the text."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    title: str = ""
    text: str = ""


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dom = Dom()
        self._in_title = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.dom.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.dom.title += data
        self._text.append(data)

    def close(self) -> None:
        super().close()
        self.dom.text = "".join(self._text)


def parse_dom(html: str) -> Dom:
    parser = _DomParser()
    parser.feed(html)
    parser.close()
    return parser.dom


def screenshot(tmp_path: Path, page: Path) -> np.ndarray:
    """A full-height screenshot taken by `chromium --screenshot`, as an RGB uint8 array."""
    shot = tmp_path / f"{page.stem}-shot.png"
    result = chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        return np.asarray(image.convert("RGB"))


def colour_pixels(pixels: np.ndarray, hex_colour: str, tolerance: int = 12) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(pixels.astype(np.int16) - rgb).max(axis=-1) <= tolerance).sum())


def spread(pixels: np.ndarray) -> float:
    """Standard deviation of the grey levels, 0 to 1: about 0 for a blank page."""
    return float(pixels[::2, ::2].mean(axis=-1).std() / 255.0)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"analysis-{name}.json").read_text(encoding="utf-8"))


def report_of(tmp_path: Path, doc: dict[str, Any], name: str) -> Path:
    out = tmp_path / f"{name}.html"
    write_html(doc, out)
    return out


# ---------------------------------------------------------------------------------------------------
# Controls: each detector must see the fault it is meant to catch, or a pass below would mean nothing.


def test_controls_the_detectors_catch_a_request_a_script_and_a_blank_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>control</title></head><body><p>x</p>"
        '<img src="http://weavepcap-control.invalid/pixel.png" alt="">'
        "<script>document.title='PWNED'; document.body.setAttribute('data-pwned', '1');</script>"
        "</body></html>",
        encoding="utf-8",
    )
    page = open_in_chromium(tmp_path, bad)
    assert page.remote_requests == ["http://weavepcap-control.invalid/pixel.png"]
    assert page.title == "PWNED"
    assert any(attrs.get("data-pwned") == "1" for tag, attrs in parse_dom(page.html).tags if tag == "body")
    assert page.images == [(True, 0)]  # a picture that did not load shows up as width 0

    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    assert spread(screenshot(tmp_path, blank)) < 0.01


# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["p2-fault", "p1-stall", "healthy"])
def test_report_renders_with_verdict_and_plots_and_fetches_nothing(tmp_path: Path, name: str) -> None:
    doc = fixture(name)
    report = report_of(tmp_path, doc, name)
    page = open_in_chromium(tmp_path, report)
    assert page.remote_requests == [], f"the report requested {page.remote_requests}"
    assert page.requests[0] == report.as_uri()  # the log is live: it saw the page itself
    dom = parse_dom(page.html)
    assert doc["verdict"]["headline"] in dom.text
    assert len(page.images) == 4 and all(complete and width > 0 for complete, width in page.images), page.images
    # Our inline sorter ran (it makes headings focusable): scripts work here, so "nothing ran" means something.
    assert any(tag == "th" and attrs.get("tabindex") == "0" for tag, attrs in dom.tags)

    pixels = screenshot(tmp_path, report)
    assert spread(pixels) > 0.05, "the screenshot is blank"
    # Plot-only colours (Okabe-Ito blue and orange, absent from the page's CSS) show the PNGs were drawn.
    assert colour_pixels(pixels, plots.ORANGE) + colour_pixels(pixels, plots.BLUE) > 500


def test_crafted_script_in_the_analysis_does_not_run(tmp_path: Path) -> None:
    doc = fixture("xss")
    page = open_in_chromium(tmp_path, report_of(tmp_path, doc, "xss"))
    # Every payload would have changed the title or marked an element; none did.
    assert page.title == "Weave Net incident report: " + doc["verdict"]["headline"]
    dom = parse_dom(page.html)
    assert not [attrs for _tag, attrs in dom.tags if "data-pwned" in attrs]
    tags = [tag for tag, _attrs in dom.tags]
    assert tags.count("script") == 1 and tags.count("img") == 4
    assert not {"svg", "iframe", "b"} & set(tags)
    assert page.remote_requests == []
    # The crafted strings reach the reader as text.
    for crafted in (doc["hosts"][0]["name"], doc["hosts"][1]["nicknames"][0], doc["captures"][0]["name"]):
        assert crafted in dom.text


def analyze_args(scenario: Path) -> list[str]:
    """The scenario's `HOST=FILE` arguments from its expected.json, made relative to this directory."""
    args = json.loads((scenario / "expected.json").read_text(encoding="utf-8"))["analyze_args"]
    return [f"{a.partition('=')[0]}={scenario / a.partition('=')[2]}" if "=" in a else str(scenario / a) for a in args]


def test_report_of_real_samples_renders_in_the_browser(tmp_path: Path) -> None:
    api = pytest.importorskip("weavepcap.api", reason="weavepcap.api (the analyze engine) is not in this checkout yet")
    scenarios = sorted(d for d in SAMPLES.glob("*") if (d / "expected.json").is_file())
    need(bool(scenarios), "no recorded samples under samples/")
    for scenario in scenarios[:3]:  # bounded: three scenarios keep the test quick
        doc = api.analyze(analyze_args(scenario)).to_dict()
        page = open_in_chromium(tmp_path, report_of(tmp_path, doc, scenario.name))
        assert page.remote_requests == []
        assert doc["verdict"]["headline"] in parse_dom(page.html).text
        assert len(page.images) == 4 and all(width > 0 for _complete, width in page.images)
