"""The app's page endpoint (POST /v1/pages) and the web page's page mode, in front of a local
model server serving the contract detector and line model of tests/test_recognize.py."""

import base64
import json
import zlib

import numpy as np
import pytest
from test_app import AppServer, data_url
from test_recognize import page_png, serving_base  # noqa: F401 - serving_base is a fixture
from test_web_page import browser  # noqa: F401 - a fixture (headless Chromium)

from serving import paragraph
from serving.app import AppOptions

MAX_IMAGE_BYTES = 200_000


@pytest.fixture(scope="module")
def pages_server(serving_base):  # noqa: F811 - the fixture imported above
    from common import push_layout
    from serving.local_server import LocalModelServer, ModelManager, ModelSource

    sources = [
        ModelSource(name, serving_base / name)
        for name in (push_layout.DETECTOR_MODEL, push_layout.LINES_MODEL)
    ]
    server = LocalModelServer(ModelManager(sources, poll_seconds=0), rest_port=0, grpc_port=0)
    server.start()
    yield server
    server.stop()


def page_app(pages_server, **options) -> AppServer:
    return AppServer(
        pages_server.grpc_target,
        options=AppOptions(max_image_bytes=MAX_IMAGE_BYTES, max_pixels=1_000_000, **options),
        pages=paragraph.over_grpc(pages_server.grpc_target, timeout=60),
    )


@pytest.fixture(scope="module")
def app(pages_server):
    server = page_app(pages_server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def expected(serving_base):  # noqa: F811 - the fixture imported above
    return paragraph.in_process(serving_base).recognize(page_png()).to_json()


def test_upload_a_page_and_get_its_lines(app, expected):
    status, body = app.predict_file(page_png(), path="/v1/pages")
    assert status == 200, body
    for shown, line in zip(body["lines"], expected["lines"], strict=True):
        assert (shown["polygon"], shown["box"], shown["text"]) == (
            line["polygon"],
            list(line["box"]),
            line["text"],
        )
        assert shown["conf"] == pytest.approx(line["conf"], abs=1e-5)
        assert len(shown["chars"]) == len(shown["text"])  # the served model gives them
    assert (body["width"], body["height"]) == (400, 300)
    assert len(body["lines"]) == 3
    assert body["text"] == "\n".join(line["text"] for line in body["lines"])
    first = body["lines"][0]
    assert set(first) == {"polygon", "box", "text", "conf", "detection", "chars"}
    assert abs(first["box"][1] - 50) <= 10 and abs(first["box"][3] - 79) <= 10  # the first bar
    status, by_json = app.predict_json({"image": data_url(page_png())}, path="/v1/pages")
    assert (status, by_json) == (200, body)


def test_blank_page_has_no_lines(app):
    assert app.predict_file(page_png(bars=[]), path="/v1/pages") == (
        200,
        {"width": 400, "height": 300, "text": "", "lines": []},
    )


def huge_header_png() -> bytes:
    data = bytearray(page_png(bars=[]))
    data[16:24] = (5000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize(
    "data, status, message",
    [
        (b"", 400, "empty request body"),
        (page_png()[:100], 400, "not a readable image"),
        (b"plain text, no image", 400, "not a readable image"),
        (page_png(bars=[], size=(20, 300)), 400, "20x300 pixels; a page needs at least 32"),
        (huge_header_png(), 413, "5000x5000 pixels, more than the limit of 1000000"),
        (b"\x89PNG" + b"\0" * MAX_IMAGE_BYTES, 413, "more than the limit"),
    ],
    ids=["empty", "truncated", "text", "tiny", "huge-header", "too-many-bytes"],
)
def test_bad_uploads_get_a_clear_4xx_and_the_app_keeps_serving(app, data, status, message):
    if data:
        answer = app.predict_file(data, path="/v1/pages")
    else:
        answer = app.request("POST", "/v1/pages", b"", {"Content-Type": "application/json"})[:2]
    assert answer[0] == status and message in answer[1]["error"], answer
    assert app.predict_file(page_png(bars=[]), path="/v1/pages")[0] == 200


def test_version_is_refused_and_an_app_without_detector_says_so(app, pages_server):
    status, body = app.predict_file(page_png(), {"version": "2"}, path="/v1/pages")
    assert status == 400 and "takes no 'version'" in body["error"]
    plain = AppServer(pages_server.grpc_target)
    try:
        status, body = plain.predict_file(page_png(), path="/v1/pages")
        assert status == 404 and "reads no pages" in body["error"]
    finally:
        plain.stop()


def test_token_guards_the_page_endpoint(pages_server):
    secured = page_app(pages_server, token="s3cret")
    try:
        assert secured.predict_file(page_png(), path="/v1/pages")[0] == 401
        status, body = secured.request(
            "POST",
            "/v1/pages",
            json.dumps({"image": data_url(page_png())}).encode(),
            {"Content-Type": "application/json", "Authorization": "Bearer s3cret"},
        )[:2]
        assert status == 200 and len(body["lines"]) == 3
    finally:
        secured.stop()


def test_web_page_reads_a_page_and_draws_its_lines(browser, app, expected, tmp_path):  # noqa: F811
    image_path = tmp_path / "uploaded_page.png"
    image_path.write_bytes(page_png())
    browser.open(f"http://127.0.0.1:{app.port}/")
    document = browser.send("DOM.getDocument")
    node = browser.send(
        "DOM.querySelector", nodeId=document["root"]["nodeId"], selector="#page-file"
    )
    browser.send("DOM.setFileInputFiles", files=[str(image_path)], nodeId=node["nodeId"])
    browser.wait_for("document.getElementById('page-status').textContent.includes('uploaded')")
    browser.evaluate("document.getElementById('read-page').click()")
    browser.wait_for(
        "document.getElementById('page-status').textContent.endsWith('lines')"
        " || document.getElementById('page-error').textContent"
    )
    shown = browser.evaluate(
        "({error: document.getElementById('page-error').textContent,"
        " status: document.getElementById('page-status').textContent,"
        " lines: Array.from(document.querySelectorAll('#page-lines li'))"
        ".map(li => li.firstChild.textContent),"
        " size: [document.getElementById('page-canvas').width,"
        " document.getElementById('page-canvas').height]})"
    )
    assert shown["error"] == "" and shown["status"] == "3 lines"
    assert shown["lines"] == [line["text"] or "(nothing read)" for line in expected["lines"]]
    assert shown["size"] == [400, 300]
    # The outlines are drawn in the line colors (blue, red) over the gray page.
    canvas = browser.evaluate("document.getElementById('page-canvas').toDataURL('image/png')")
    from io import BytesIO

    from PIL import Image

    pixels = np.asarray(
        Image.open(BytesIO(base64.b64decode(canvas.split(",", 1)[1]))).convert("RGB")
    ).astype(int)
    blue = (pixels[..., 2] - pixels[..., 0] > 100).sum()
    red = (pixels[..., 0] - pixels[..., 2] > 100).sum()
    assert blue > 200 and red > 100
    browser.evaluate("document.getElementById('page-mode').scrollIntoView()")
    print(f"screenshot: {browser.screenshot(tmp_path / 'web_page_pages.png')}")
    (tmp_path / "notes.png").write_bytes(b"not an image")
    browser.send(
        "DOM.setFileInputFiles", files=[str(tmp_path / "notes.png")], nodeId=node["nodeId"]
    )
    browser.wait_for("document.getElementById('page-status').textContent.includes('notes')")
    browser.evaluate("document.getElementById('read-page').click()")
    error = browser.wait_for("document.getElementById('page-error').textContent")
    assert error.startswith("Error: ") and "not a readable image" in error
