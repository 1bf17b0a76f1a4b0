"""Hostile and malformed input to the app and the local server: every case is a 4xx with a clear
message (never a 500, never TF's node names), and the process keeps serving afterwards.

Covers deep JSON nesting, huge numbers, lone surrogates, images sent to the tf.Example signature,
every kind of unreadable image, decompression bombs (built compactly here: a few KB of PNG,
JPEG, GIF or BMP header declaring up to 20000 x 20000 pixels, refused from the header before
decoding) and oversized batches. The app and server are the session's (tests/conftest.py).
"""

import base64
import io
import json
import struct
import zlib

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from test_app import AppServer, data_url
from test_client import line_image, png_bytes

from common.signatures import DEFAULT_MAX_BATCH, DEFAULT_MAX_PIXELS

# --- images, good, bad and huge ------------------------------------------------------------


def encoded(fmt: str, mode: str = "L", size=(40, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 200).save(buffer, format=fmt)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int, rows: int | None = None) -> bytes:
    """A valid gray PNG of `width` x `height` zero pixels, compressed row by row (`rows` rows
    only, to keep it small: the header alone is what is refused)."""
    compressor, data = zlib.compressobj(9), bytearray()
    row = bytes(width + 1)
    for _ in range(height if rows is None else rows):
        data += compressor.compress(row)
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", bytes(data))
        + _chunk(b"IEND", b"")
    )


def bomb_jpeg(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to declare `width` x `height`."""
    data = bytearray(encoded("JPEG", size=(8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bomb_gif(width: int, height: int) -> bytes:
    data = bytearray(encoded("GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def bomb_bmp(width: int, height: int) -> bytes:
    data = bytearray(encoded("BMP"))
    data[18:26] = struct.pack("<ii", width, -height)  # top-down: negative height
    return bytes(data)


BOMBS = {
    "png 10000x10000": lambda: bomb_png(10000, 10000),  # ~100 KB, all rows
    "png 20000x20000": lambda: bomb_png(20000, 20000, rows=10),
    "jpeg 65000x65000": lambda: bomb_jpeg(65000, 65000),
    "gif 65535x65535": lambda: bomb_gif(65535, 65535),
    "bmp 30000x30000": lambda: bomb_bmp(30000, 30000),
    "png just over the limit": lambda: bomb_png(4097, 4096, rows=1),
}
OK_PNG = png_bytes(line_image(4))
UNREADABLE = {  # what the model's decoder refuses, each with the reason it gives
    "text": b"this is not an image",
    "png signature only": b"\x89PNG\r\n\x1a\n",
    "truncated png": OK_PNG[: len(OK_PNG) // 2],
    "png without data": bomb_png(10, 10, rows=0)[:-12],
    "truncated jpeg": encoded("JPEG", size=(64, 64))[:200],
    "jpeg without frame header": b"\xff\xd8\xff\xe0\x00\x04ab\xff\xda",
    "gif header only": b"GIF89a\x10\x00\x10\x00",
    "bmp header only": b"BM" + bytes(60),
}
OTHER_FORMATS = {"webp": encoded("WEBP"), "tiff": encoded("TIFF")}


def assert_clear(message: str) -> None:
    """A message for a client: no TF node or function names, no file paths."""
    for internal in ("{{node", "{{function", "[Op:", "/tmp/", "/work/", "Traceback"):
        assert internal not in message, message


# --- the app -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(model_server):
    server = AppServer(model_server.grpc_target)  # the app's default limits
    yield server
    server.stop()


def app_still_serves(app) -> None:
    status, body = app.predict_json({"image": data_url(OK_PNG)})
    assert status == 200 and set(body) == {"pred", "conf", "chars"}, body


APP_CASES = {
    # id: (body, query, status, part of the message)
    "nested 5000 deep": (b'{"image": ' + b"[" * 5000 + b"]" * 5000 + b"}", "", 400, "JSON"),
    "nested objects 100000 deep": (b'{"a":' * 100000 + b"1" + b"}" * 100000, "", 400, "JSON"),
    "version 1e20": ({"image": data_url(OK_PNG), "version": 1e20}, "", 400, "'version'"),
    "version 10**30": ({"image": data_url(OK_PNG), "version": 10**30}, "", 400, "'version'"),
    "version superscript digit": (
        {"image": data_url(OK_PNG), "version": "\u00b2"},
        "",
        400,
        "'version'",
    ),
    "query version over int64": (
        {"image": data_url(OK_PNG)},
        "?version=9223372036854775808",
        400,
        "'version'",
    ),
    "number of 5000 digits": (b'{"image": "x", "version": ' + b"9" * 5000 + b"}", "", 400, "JSON"),
    "lone surrogate": (b'{"image": "\\ud800"}', "", 400, "base64"),
    "lone surrogate in data url": (
        b'{"image": "data:image/png;base64,\\udfff"}',
        "",
        400,
        "base64",
    ),
}


@pytest.mark.parametrize("case", APP_CASES, ids=list(APP_CASES))
def test_app_refuses_hostile_json_with_a_4xx(app, case):
    body, query, status, message = APP_CASES[case]
    got, answer = app.predict_json(body, path="/v1/predict" + query)
    assert (got, message in answer.get("error", "")) == (status, True), answer
    app_still_serves(app)


@pytest.mark.parametrize("name", list(UNREADABLE) + list(OTHER_FORMATS) + list(BOMBS))
def test_app_refuses_every_bad_image_before_the_model(app, served, name):
    image = {**UNREADABLE, **OTHER_FORMATS}.get(name) or BOMBS[name]()
    status, answer = app.predict_file(image)
    expected = 413 if name in BOMBS else 415 if name in OTHER_FORMATS else 400
    assert status == expected, answer
    assert_clear(answer["error"])
    if name in BOMBS:
        assert "pixels, more than the limit of" in answer["error"]
    assert served.requests() == 0  # refused before reaching the model server
    app_still_serves(app)


# --- the local server ----------------------------------------------------------------------


def rest(model_server, body, path: str = "lines:predict") -> tuple:
    import urllib.error
    import urllib.request

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{model_server.rest_url}/v1/models/{path}",
        data=data,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}


def server_still_serves(model_server) -> None:
    status, body = rest(model_server, {"instances": [b64(OK_PNG)]})
    assert status == 200 and len(body["predictions"]) == 1, body


SERVER_CASES = {
    # id: (body, status, part of the message)
    "nested 5000 deep": (
        b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        400,
        "JSON Parse error",
    ),
    "lone surrogate": (b'{"instances": ["\\ud800"]}', 400, "lone surrogate"),
    "lone surrogate in signature": (
        b'{"signature_name": "\\ud800", "instances": ["a"]}',
        400,
        "not found",
    ),
    "number of 5000 digits": (b'{"instances": [' + b"9" * 5000 + b"]}", 400, "JSON Parse error"),
    "huge signature number": (
        {"signature_name": 1e20, "instances": ["a"]},
        400,
        "'signature_name'",
    ),
    "png to from_examples": (
        {"signature_name": "from_examples", "instances": [b64(OK_PNG)]},
        400,
        "expects serialized tf.Example protos in examples, but examples[0] "
        "is a PNG image; send images to serving_default",
    ),
    "garbage to from_examples": (
        {"signature_name": "from_examples", "instances": [b64(b"\xff\xff\xff\xff")]},
        400,
        "examples[0] is not a serialized tf.Example",
    ),
    "batch over the limit": (
        {"instances": [b64(OK_PNG)] * (DEFAULT_MAX_BATCH + 1)},
        413,
        f"more than the limit of {DEFAULT_MAX_BATCH} images per request",
    ),
}


@pytest.mark.parametrize("case", SERVER_CASES, ids=list(SERVER_CASES))
def test_server_refuses_hostile_requests_with_a_4xx(model_server, case):
    body, status, message = SERVER_CASES[case]
    got, answer = rest(model_server, body)
    assert got == status and message in answer["error"], answer
    assert_clear(answer["error"])
    server_still_serves(model_server)


def test_server_refuses_an_out_of_range_version_in_the_path(model_server):
    got, answer = rest(
        model_server, {"instances": [b64(OK_PNG)]}, "lines/versions/9223372036854775808:predict"
    )
    assert got == 400 and "Failed to convert version" in answer["error"]
    server_still_serves(model_server)


@pytest.mark.parametrize("name", list(UNREADABLE) + list(OTHER_FORMATS) + list(BOMBS))
def test_server_refuses_every_bad_image_over_rest_and_grpc(model_server, name):
    image = {**UNREADABLE, **OTHER_FORMATS}.get(name) or BOMBS[name]()
    # The bad image second in the batch: the limit names it by its index.
    status, answer = rest(model_server, {"instances": [b64(OK_PNG), b64(image)]})
    assert status == (413 if name in BOMBS else 400), answer
    assert_clear(answer["error"])
    if name in BOMBS:
        assert answer["error"].startswith("image_bytes[1] is ")
        assert f"more than the limit of {DEFAULT_MAX_PIXELS} pixels" in answer["error"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "lines"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([OK_PNG, image]))
    with grpc.insecure_channel(model_server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    code = grpc.StatusCode.RESOURCE_EXHAUSTED if name in BOMBS else grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.code() == code
    assert_clear(error.value.details())
    server_still_serves(model_server)


def test_a_large_image_within_the_limits_is_served(model_server):
    """The limit is on pixels, not on what an image looks like: a 2000 x 2000 scan is read."""
    image = np.full((2000, 2000), 255, np.uint8)
    image[900:1100, 100:1900] = 0
    status, body = rest(model_server, {"instances": [b64(png_bytes(image))]})
    assert status == 200 and len(body["predictions"]) == 1
