"""serving.client against the real local model server (serving/local_server.py).

The server is the session's `model_server` (tests/conftest.py): TF Serving's REST and gRPC APIs
over untrained tiny line models exported as the Pusher would (serving.contract_models), `lines`
versions 1 and 2 with labels stable -> 1 and canary -> 2, and a `broken` model whose only version
failed to load. What reached the model (which version, how many images, in how many calls) is
read from the server's metrics through the `served` fixture. test_app.py and test_web_page.py use
the same server and the image helpers here.
"""

import functools
import io
import re
import socket

import numpy as np
import pytest
from PIL import Image

from serving import client as client_module
from serving.client import GrpcClient, Prediction, RestClient, ServingError
from serving.contract_models import template_model
from serving.predictors import LinePredictor, PredictionError

# --- images ----------------------------------------------------------------------------------


def png_bytes(array: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def line_image(seed: int = 0, width: int = 112) -> np.ndarray:
    """A white 28 x width line with a few dark strokes."""
    rng = np.random.default_rng(seed)
    image = np.full((28, width), 255, np.uint8)
    for x in range(4, width - 12, 14):
        top, left = rng.integers(3, 8), x + rng.integers(0, 4)
        image[top : top + 18, left : left + 3] = 20
        image[top + 8 : top + 11, left : left + 9] = 20
    return image


@functools.cache
def in_process_predictor() -> LinePredictor:
    """The served model (every served version is a copy of this export), run in this process."""
    return LinePredictor(template_model())


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_client(kind: str, served, **kwargs):
    if kind == "rest":
        return RestClient(served.rest_url, kwargs.pop("model", "lines"), timeout=20, **kwargs)
    return GrpcClient(served.grpc_address, kwargs.pop("model", "lines"), timeout=20, **kwargs)


KINDS = ["rest", "grpc"]


# --- predictions -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_batch_of_paths_bytes_and_arrays_matches_the_model_in_one_request(kind, served, tmp_path):
    path = tmp_path / "line.png"
    path.write_bytes(png_bytes(line_image(1)))
    images = [str(path), png_bytes(line_image(2, width=150)), line_image(3), line_image(4) / 255.0]

    with make_client(kind, served) as client:
        predictions = client.predict(images)

    expected = in_process_predictor().predict_batch(images)
    assert [p.text for p in predictions] == [text for text, _ in expected]
    assert [p.confidence for p in predictions] == pytest.approx([c for _, c in expected], rel=1e-5)
    assert all(isinstance(p, Prediction) and 0.0 <= p.confidence <= 1.0 for p in predictions)
    assert served.requests() == 1
    assert served.calls() == {2: (1, 4)}  # the latest version, one model call of 4 images


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "spec, version",
    [
        ({"version": 1}, 1),
        ({"version": "2"}, 2),
        ({"label": "stable"}, 1),  # not the latest: only the label can have picked it
        ({"label": "canary"}, 2),
    ],
)
def test_version_and_label_reach_the_server(kind, spec, version, served):
    with make_client(kind, served, **spec) as client:
        assert len(client.predict([line_image()])) == 1
    assert served.calls() == {version: (1, 1)}


@pytest.mark.parametrize("kind", KINDS)
def test_grpc_per_call_version_overrides_and_rest_url_shape(kind, served):
    if kind == "rest":
        assert RestClient("http://h:1/", "lines").url == "http://h:1/v1/models/lines:predict"
        assert (
            RestClient("http://h:1", "m", version=3).url
            == "http://h:1/v1/models/m/versions/3:predict"
        )
        assert (
            RestClient("http://h:1", "m", label="stable").url
            == "http://h:1/v1/models/m/labels/stable:predict"
        )
    else:
        with make_client(kind, served, label="stable") as client:
            client.predict([line_image()], version=2)
        assert served.calls() == {2: (1, 1)}  # not 1, the label's version


def test_version_and_label_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        RestClient("http://127.0.0.1:1", "lines", version=1, label="stable")
    with pytest.raises(ValueError, match="integer"):
        GrpcClient("127.0.0.1:1", "lines", version="latest")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "spec, http_status, grpc_status, message",
    [
        ({"model": "nope"}, 404, "NOT_FOUND", r"Servable not found for request: Latest\(nope\)"),
        ({"version": 7}, 404, "NOT_FOUND", r"Specific\(lines, 7\)"),
        ({"label": "beta"}, 400, "INVALID_ARGUMENT", "Unrecognized servable version label: beta"),
    ],
)
def test_server_refusals_become_serving_errors(
    kind, spec, http_status, grpc_status, message, served
):
    with (
        make_client(kind, served, **spec) as client,
        pytest.raises(ServingError, match=message) as raised,
    ):
        client.predict([line_image()])
    assert raised.value.status == (http_status if kind == "rest" else grpc_status)
    assert raised.value.http_status == http_status
    assert re.search(message, raised.value.message)


@pytest.mark.parametrize("kind", KINDS)
def test_image_the_model_cannot_decode_is_the_servers_400(kind, served):
    webp = png_bytes(line_image(), format="WEBP")  # PIL reads it, the model does not
    client = make_client(kind, served)
    with client, pytest.raises(ServingError, match="Unknown image file format") as raised:
        client.predict([webp])
    assert raised.value.http_status == 400


@pytest.mark.parametrize("kind", KINDS)
def test_server_down_is_unavailable(kind):
    if kind == "rest":
        client = RestClient(f"http://127.0.0.1:{closed_port()}", "lines", timeout=5)
    else:
        client = GrpcClient(f"127.0.0.1:{closed_port()}", "lines", timeout=5)
    with client, pytest.raises(ServingError, match="127.0.0.1") as raised:
        client.predict([line_image()])
    assert raised.value.http_status == 503


@pytest.mark.parametrize("kind", KINDS)
def test_bad_images_are_rejected_before_sending(kind, served, tmp_path):
    truncated = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    truncated = truncated[: len(truncated) // 2]
    bad = [
        ([str(tmp_path / "missing.png")], "missing.png"),
        ([line_image(), truncated], "not a readable image"),
        ([b"hello"], "not a readable image"),
        ([np.zeros((2, 3, 3), np.uint8)], "2-D grayscale"),
        ([np.full((5, 5), 2.0)], r"float in \[0, 1\]"),
        ([], "no images"),
        (png_bytes(line_image()), "list of images"),
        ([42], "got int"),
    ]
    with make_client(kind, served) as client:
        for images, message in bad:
            with pytest.raises(PredictionError, match=message):
                client.predict(images)
    assert served.requests() == 0


# --- model status ----------------------------------------------------------------------------


def test_model_status_and_readiness(served):
    with GrpcClient(served.grpc_address, "lines") as client:
        assert client.status() == [
            {"version": 2, "state": "AVAILABLE", "error": ""},
            {"version": 1, "state": "AVAILABLE", "error": ""},
        ]
        assert client.ready()
    with GrpcClient(served.grpc_address, "lines", version=2) as client:
        assert [s["version"] for s in client.status()] == [2]
    with GrpcClient(served.grpc_address, "broken") as client:  # its only version failed to load
        (status,) = client.status()
        assert (status["version"], status["state"]) == (1, "END")
        assert "Failed to load version 1 of model broken" in status["error"]
        assert not client.ready()
    client = GrpcClient(served.grpc_address, "nope")
    with client, pytest.raises(ServingError, match="Could not find any versions of model nope"):
        client.ready()


# --- CLI -------------------------------------------------------------------------------------


def test_cli_prints_one_line_per_image(served, tmp_path, capsys):
    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"line{seed}.png")
        paths[-1].write_bytes(png_bytes(line_image(seed)))
    expected = in_process_predictor().predict_batch(paths)

    for target in (["--rest", served.rest_url], ["--grpc", served.grpc_address]):
        argv = ["predict", *map(str, paths), "--model", "lines", "--label", "stable", *target]
        assert client_module.main(argv) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split("\t") for line in lines] == [
            [str(p), text, f"{confidence:.4f}"] for p, (text, confidence) in zip(paths, expected)
        ]
    assert served.calls() == {1: (2, 4)}  # the label's version, over REST then gRPC

    assert (
        client_module.main(
            ["predict", str(tmp_path / "nothing.png"), "--grpc", served.grpc_address]
        )
        == 1
    )
    assert "image file not found" in capsys.readouterr().err
    assert (
        client_module.main(["predict", str(paths[0]), "--version", "9", "--rest", served.rest_url])
        == 1
    )
    assert "404: Servable not found" in capsys.readouterr().err
