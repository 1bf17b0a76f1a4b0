"""The app's web page in a real headless Chromium, driven through the Chrome DevTools Protocol.

Draws a stroke on the canvas with mouse events (and, separately, sets a file on the upload
input), clicks Predict and checks that the page shows the prediction the model makes for that
image; screenshots are saved next to the test's tmp_path (see the test output).

Needs Debian's `chromium` at /usr/bin/chromium (`make test` installs it) and the
`websocket-client` package (in requirements.lock).
"""

import base64
import json
import math
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import websocket
from test_app import AppServer
from test_client import (
    in_process_predictor,
    line_image,
    png_bytes,
)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=900,700",
    "--remote-debugging-port=0",
]


class Browser:
    """A headless Chromium and a CDP session on its page (one command at a time)."""

    def __init__(self, profile_dir: Path):
        self.log_path = profile_dir.parent / "chromium.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - open while Chromium runs
        self.process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(
                    f"Chromium did not start; its output:\n{self.log_path.read_text()[-3000:]}"
                )
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                raise AssertionError(f"JavaScript error on the page: {json.dumps(details)[:1000]}")

    def evaluate(self, expression: str):
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && !!document.getElementById('predict')")

    def center(self, selector: str) -> tuple:
        rect = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()"
        )
        return rect[0] + rect[2] / 2, rect[1] + rect[3] / 2, rect

    def mouse(self, kind: str, x: float, y: float, buttons: int = 1) -> None:
        params = {"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons}
        if kind in ("mousePressed", "mouseReleased"):
            params["clickCount"] = 1
        self.send("Input.dispatchMouseEvent", **params)

    def click(self, selector: str) -> None:
        x, y, _ = self.center(selector)
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y, buttons=0)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def app(model_server):
    """The app in front of the local model server (tests/conftest.py), for model `lines`."""
    server = AppServer(model_server.grpc_target)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the web page test drives a real headless Chromium. "
            "`make test` installs it (apt-get install -y chromium)."
        )
    directory = tmp_path_factory.mktemp("chromium")
    (directory / "profile").mkdir()
    browser = Browser(directory / "profile")
    yield browser
    browser.close()
    shutil.rmtree(directory / "profile", ignore_errors=True)


@pytest.fixture
def page(browser, app):
    browser.open(f"http://127.0.0.1:{app.port}/")
    return browser


def result(page) -> dict:
    """The prediction, confidence and error the page shows, once Predict has finished."""
    page.wait_for(
        "(document.getElementById('pred').textContent || document.getElementById('error')"
        ".textContent) && !document.getElementById('predict').disabled"
    )
    return page.evaluate(
        "({pred: document.getElementById('pred').textContent,"
        " conf: document.getElementById('conf').textContent,"
        " error: document.getElementById('error').textContent})"
    )


def shown(text: str) -> str:
    return text if text else "(nothing read)"


def test_draw_a_line_and_predict(page, served, tmp_path):
    *_, (left, top, width, height) = page.center("#canvas")
    # Handwriting-like strokes: a zigzag, a loop and a bar across the left half of the canvas.
    strokes = [
        [(0.05 + 0.02 * i, 0.3 + 0.4 * (i % 2)) for i in range(8)],
        [(0.30 + 0.05 * math.cos(t / 3), 0.5 + 0.25 * math.sin(t / 3)) for t in range(20)],
        [(0.42, 0.25), (0.42, 0.8), (0.42, 0.5), (0.55, 0.5), (0.55, 0.25), (0.55, 0.8)],
    ]
    for stroke in strokes:
        points = [(left + fx * width, top + fy * height) for fx, fy in stroke]
        page.mouse("mousePressed", *points[0])
        for point in points[1:]:
            page.mouse("mouseMoved", *point)
        page.mouse("mouseReleased", *points[-1], buttons=0)

    drawn = page.evaluate("document.getElementById('canvas').toDataURL('image/png')")
    drawn = base64.b64decode(drawn.split(",", 1)[1])
    dark = page.evaluate(
        "(() => { const c = document.getElementById('canvas');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 100) n++; return n; })()"
    )
    assert dark > 500, "the strokes left no ink on the canvas"

    page.click("#predict")
    shown_result = result(page)
    screenshot = page.screenshot(tmp_path / "web_page_drawn.png")
    print(f"screenshot: {screenshot}")

    ((text, confidence),) = in_process_predictor().predict_batch([drawn])
    assert shown_result == {"pred": shown(text), "conf": f"{confidence:.3f}", "error": ""}
    assert served.calls() == {2: (1, 1)}  # one image, one model call
    assert screenshot.stat().st_size > 5000
    # One span per character read, titled with its confidence; doubtful ones are marked.
    spans = page.evaluate(
        "Array.from(document.querySelectorAll('#pred span')).map(s => [s.title, s.className])"
    )
    assert len(spans) == len(text)
    for title, css_class in spans:
        value = float(title.removeprefix("confidence "))
        assert css_class == ("doubtful" if value < 0.5 else "")


def test_upload_an_image_and_predict(page, served, tmp_path):
    image_path = tmp_path / "uploaded_line.png"
    image_path.write_bytes(png_bytes(line_image(6, width=200)))
    document = page.send("DOM.getDocument")
    node = page.send("DOM.querySelector", nodeId=document["root"]["nodeId"], selector="#file")
    page.send("DOM.setFileInputFiles", files=[str(image_path)], nodeId=node["nodeId"])
    page.wait_for("document.getElementById('source').textContent.includes('uploaded_line.png')")
    page.wait_for(
        "document.getElementById('preview').complete && !document.getElementById('preview').hidden"
    )

    page.click("#predict")
    shown_result = result(page)
    screenshot = page.screenshot(tmp_path / "web_page_uploaded.png")
    print(f"screenshot: {screenshot}")

    ((text, confidence),) = in_process_predictor().predict_batch([image_path])
    assert shown_result == {"pred": shown(text), "conf": f"{confidence:.3f}", "error": ""}
    assert served.calls() == {2: (1, 1)}


def test_predict_with_nothing_drawn_says_so_and_server_errors_are_shown(page, served, model_server):
    page.click("#predict")
    assert result(page)["error"] == "Draw a line of handwriting or upload an image first."
    assert served.requests() == 0

    # The same page from an app serving `broken`, whose only version failed to load: the model
    # server answers NOT_FOUND, and the page shows it.
    broken = AppServer(model_server.grpc_target, model="broken")
    try:
        page.open(f"http://127.0.0.1:{broken.port}/")
        x, y, _ = page.center("#canvas")
        page.mouse("mousePressed", x - 50, y)
        page.mouse("mouseMoved", x + 50, y + 10)
        page.mouse("mouseReleased", x + 50, y + 10, buttons=0)
        page.click("#predict")
        shown_result = result(page)
    finally:
        broken.stop()
    assert shown_result["pred"] == ""
    assert (
        shown_result["error"]
        == "Error: model server: Servable not found for request: Latest(broken)"
    )
    assert served.requests() == 1 and served.calls("broken") == {}


def test_page_of_an_app_with_a_token_sends_the_token_it_was_opened_with(
    browser, model_server, served
):
    """With --token, the page (public) works when opened as /#token=<token>, which it keeps
    for the tab and removes from the address bar; opened without it, it says how to open it."""
    from serving.app import AppOptions

    secured = AppServer(model_server.grpc_target, options=AppOptions(token="s3cret"))

    def draw_and_predict() -> dict:
        x, y, _ = browser.center("#canvas")
        browser.mouse("mousePressed", x - 50, y)
        browser.mouse("mouseMoved", x + 50, y + 10)
        browser.mouse("mouseReleased", x + 50, y + 10, buttons=0)
        browser.click("#predict")
        return result(browser)

    try:
        browser.open(f"http://127.0.0.1:{secured.port}/")
        refused = draw_and_predict()
        browser.open(f"http://127.0.0.1:{secured.port}/index.html#token=s3cret")  # a new load
        assert browser.evaluate("location.hash") == ""
        accepted = draw_and_predict()
    finally:
        secured.stop()
    assert refused["pred"] == "" and "needs a token" in refused["error"]
    assert refused["error"].endswith("/#token=<token>")
    assert accepted["error"] == "" and accepted["conf"]
    assert served.calls() == {2: (1, 1)}  # only the request with the token reached the model
