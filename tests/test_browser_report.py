"""The HTML report in real headless Chromium: it renders, shows verdict and plots, fetches nothing, runs no injected script."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
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
    """What Chromium made of a page: the requests it issued, dialogs, its rendered DOM and title, its images."""

    def __init__(self, requests: list[str], dialogs: list[str], html: str, title: str, images: list[tuple[bool, int]]) -> None:
        self.requests = requests
        self.dialogs = dialogs  # alert()/confirm() messages: any means a script ran that should not have
        self.html = html
        self.title = title
        self.images = images  # (complete, naturalWidth) per <img>: width 0 means it did not decode

    @property
    def remote_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(("file:", "data:"))]


class Chromium:
    """One headless Chromium driven over the DevTools protocol (--remote-debugging-pipe).

    Each page gets its own tab. Network.requestWillBeSent lists every request that tab issues (the
    browser's own update and time checks belong to no tab and are not counted), so a request to
    anything but file: or data: is a request off the file. Host names resolve to nothing, so none
    can leave the machine.
    """

    def __init__(self, profile: Path) -> None:
        binary = need_tool("chromium")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The protocol pipe is fds 3 (commands in) and 4 (replies out) in the browser. Its ends are
        # first moved above 100 so that placing one on 3 or 4 cannot clobber the other.
        browser_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 100)
        browser_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 100)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def place_pipe() -> None:  # runs in the child before exec; dup2 leaves 3 and 4 inheritable
            os.dup2(browser_in, 3)
            os.dup2(browser_out, 4)

        args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
                                      preexec_fn=place_pipe, start_new_session=True)
        os.close(browser_in)
        os.close(browser_out)
        self._buffer = b""
        self._next_id = 0
        self._messages: list[dict[str, Any]] = []

    def _receive_until(self, done: Callable[[dict[str, Any]], bool], until: float) -> dict[str, Any] | None:
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                self._messages.append(message)
                if message.get("method") == "Page.javascriptDialogOpening":
                    # Dismiss it, or the page would wait for a click forever; the test sees it was opened.
                    self._send("Page.handleJavaScriptDialog", {"accept": True}, message.get("sessionId"))
                if done(message):
                    return message
            left = until - time.monotonic()
            if left <= 0:
                return None
            ready, _w, _x = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    pytest.fail("chromium closed the DevTools pipe")
                self._buffer += chunk

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        return self._next_id

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        wanted = self._send(method, params, session)
        reply = self._receive_until(lambda m: m.get("id") == wanted, time.monotonic() + BROWSER_TIMEOUT_S)
        if reply is None:
            pytest.fail(f"chromium did not answer {method} within {BROWSER_TIMEOUT_S} s")
        assert "error" not in reply, reply
        return reply["result"]

    def load(self, page: Path) -> Page:
        """Open `page` in a new tab, wait for its load event (bounded), and report what happened."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._messages = []
        self.call("Network.enable", session=session)
        self.call("Page.enable", session=session)
        self.call("Page.navigate", {"url": page.as_uri()}, session=session)
        deadline = time.monotonic() + BROWSER_TIMEOUT_S
        loaded = self._receive_until(
            lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, deadline
        )
        if loaded is None:
            pytest.fail(f"{page.name} did not finish loading within {BROWSER_TIMEOUT_S} s")
        self._receive_until(lambda m: False, min(deadline, time.monotonic() + SETTLE_S))  # late requests, if any
        probe = (
            "JSON.stringify({html: document.documentElement.outerHTML, title: document.title,"
            " images: Array.from(document.images).map(i => [i.complete, i.naturalWidth])})"
        )
        result = self.call("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session)
        state = json.loads(result["result"]["value"])
        mine = [m for m in self._messages if m.get("sessionId") == session]
        requests = [m["params"]["request"]["url"] for m in mine if m.get("method") == "Network.requestWillBeSent"]
        dialogs = [m["params"]["message"] for m in mine if m.get("method") == "Page.javascriptDialogOpening"]
        self.call("Target.closeTarget", {"targetId": target})
        return Page(requests, dialogs, state["html"], state["title"], [tuple(i) for i in state["images"]])

    def layout(self, page: Path, *, width: int, media: str) -> dict[str, Any]:
        """Lay `page` out `width` CSS px wide for `media` ("screen" or "print"); widths and what is shown."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=session)
        metrics = {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        self.call("Emulation.setEmulatedMedia", {"media": media}, session=session)
        self.call("Page.navigate", {"url": page.as_uri()}, session=session)
        deadline = time.monotonic() + BROWSER_TIMEOUT_S
        if self._receive_until(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, deadline) is None:
            pytest.fail(f"{page.name} did not finish loading within {BROWSER_TIMEOUT_S} s")
        probe = (
            "JSON.stringify({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
            " nav: getComputedStyle(document.querySelector('nav.toc')).display,"
            " widest: Math.max(...Array.from(document.querySelectorAll('table, img')).map(e => e.getBoundingClientRect().right))})"
        )
        result = self.call("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session)
        self.call("Target.closeTarget", {"targetId": target})
        return json.loads(result["result"]["value"])

    def close(self) -> None:
        try:
            if self._proc.poll() is None:
                self._send("Browser.close")
                self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self._proc.poll() is None:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
            os.close(self._to_browser)
            os.close(self._from_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    need_tool("chromium")
    instance = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield instance
    finally:
        instance.close()


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


def test_controls_the_detectors_catch_a_request_a_script_and_a_blank_page(tmp_path: Path, browser: Chromium) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>control</title></head><body><p>x</p>"
        '<img src="http://weavepcap-control.invalid/pixel.png" alt="">'
        "<script>document.title='PWNED'; document.body.setAttribute('data-pwned', '1'); alert('ran');</script>"
        "</body></html>",
        encoding="utf-8",
    )
    page = browser.load(bad)
    assert page.remote_requests == ["http://weavepcap-control.invalid/pixel.png"]
    assert page.title == "PWNED"
    assert page.dialogs == ["ran"]
    assert any(attrs.get("data-pwned") == "1" for tag, attrs in parse_dom(page.html).tags if tag == "body")
    assert page.images == [(True, 0)]  # a picture that did not load shows up as width 0

    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    assert spread(screenshot(tmp_path, blank)) < 0.01


# ---------------------------------------------------------------------------------------------------


def check_rendered(page: Page, doc: dict[str, Any]) -> Dom:
    """The checks every report must pass in the browser; returns the DOM for more."""
    assert page.remote_requests == [], f"the report requested {page.remote_requests}"
    assert page.requests and page.requests[0].startswith("file:")  # the log is live: it saw the page itself
    assert page.dialogs == []
    dom = parse_dom(page.html)
    assert doc["verdict"]["headline"] in dom.text
    assert len(page.images) == 4 and all(complete and width > 0 for complete, width in page.images), page.images
    # Our inline sorter ran (it makes headings focusable): scripts work here, so "nothing ran" means something.
    assert any(tag == "th" and attrs.get("tabindex") == "0" for tag, attrs in dom.tags)
    tags = [tag for tag, _attrs in dom.tags]
    assert tags.count("script") == 1 and tags.count("img") == 4
    assert not [attrs for _tag, attrs in dom.tags if "data-pwned" in attrs]
    return dom


@pytest.mark.parametrize("name", ["p2-fault", "p1-stall", "healthy"])
def test_report_renders_with_verdict_and_plots_and_fetches_nothing(tmp_path: Path, browser: Chromium, name: str) -> None:
    doc = fixture(name)
    check_rendered(browser.load(report_of(tmp_path, doc, name)), doc)


def test_screenshot_of_the_report_is_not_blank_and_shows_the_plots(tmp_path: Path) -> None:
    pixels = screenshot(tmp_path, report_of(tmp_path, fixture("p2-fault"), "p2-fault"))
    assert spread(pixels) > 0.05, "the screenshot is blank"
    # Plot-only colours (Okabe-Ito blue and orange, absent from the page's CSS) show the PNGs were drawn.
    assert colour_pixels(pixels, plots.ORANGE) + colour_pixels(pixels, plots.BLUE) > 500


# A4 minus 12 mm margins each side is about 700 CSS px; a narrow laptop window is about 800.
@pytest.mark.parametrize(("media", "width"), [("print", 700), ("screen", 800)])
def test_report_fits_the_page_width_on_screen_and_in_print(tmp_path: Path, browser: Chromium, media: str, width: int) -> None:
    doc = sample_analysis("p2-router") if (SAMPLES / "p2-router" / "expected.json").is_file() else fixture("p2-fault")
    shape = browser.layout(report_of(tmp_path, doc, "fit"), width=width, media=media)
    assert shape["scroll"] <= shape["client"] and shape["widest"] <= shape["client"] + 1, shape
    assert shape["nav"] == ("none" if media == "print" else "block")  # the contents bar is for screens only


def test_crafted_script_in_the_analysis_does_not_run(tmp_path: Path, browser: Chromium) -> None:
    doc = fixture("xss")
    page = browser.load(report_of(tmp_path, doc, "xss"))
    # Every payload would have changed the title, marked an element or opened a dialog; none did.
    assert page.title == "Weave Net incident report: " + doc["verdict"]["headline"]
    dom = check_rendered(page, doc)
    assert not {"svg", "iframe", "b"} & {tag for tag, _attrs in dom.tags}
    # The crafted strings reach the reader as text.
    for crafted in (doc["hosts"][0]["name"], doc["hosts"][1]["nicknames"][0], doc["captures"][0]["name"]):
        assert crafted in dom.text


def analyze_args(scenario: Path) -> list[str]:
    """The scenario's `HOST=FILE` arguments from its expected.json, made relative to this directory."""
    args = json.loads((scenario / "expected.json").read_text(encoding="utf-8"))["analyze_args"]
    return [f"{a.partition('=')[0]}={scenario / a.partition('=')[2]}" if "=" in a else str(scenario / a) for a in args]


_ANALYSES: dict[str, dict[str, Any]] = {}  # each sample is analysed once per test run


def sample_analysis(name: str) -> dict[str, Any]:
    api = pytest.importorskip("weavepcap.api", reason="weavepcap.api (the analyze engine) is not in this checkout yet")
    scenario = SAMPLES / name
    need((scenario / "expected.json").is_file(), f"sample {name} is not recorded (samples/lab/lab.py --only {name})")
    if name not in _ANALYSES:
        _ANALYSES[name] = api.analyze(analyze_args(scenario)).to_dict()
    return copy.deepcopy(_ANALYSES[name])


@pytest.mark.parametrize("name", ["p2-router", "p1-tx-stall", "healthy-fastdp"])
def test_report_of_a_real_sample_renders_in_the_browser(tmp_path: Path, browser: Chromium, name: str) -> None:
    doc = sample_analysis(name)
    check_rendered(browser.load(report_of(tmp_path, doc, name)), doc)


def test_capture_carrying_script_in_its_weave_nickname_runs_nothing(tmp_path: Path, browser: Chromium) -> None:
    """samples/xss-nickname: host-a's handshake NickName is <script>alert(...)</script>, its Name an <img onerror>."""
    doc = sample_analysis("xss-nickname")
    crafted = [v for h in doc["hosts"] for v in (*h["nicknames"], *h["peer_names"]) if "<" in v]
    assert crafted, "the sample's crafted nickname did not reach the analysis"
    page = browser.load(report_of(tmp_path, doc, "xss-nickname"))
    dom = check_rendered(page, doc)  # no dialog opened, one script, four images
    for text in crafted:
        assert text in dom.text
