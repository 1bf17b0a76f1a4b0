"""What the exported serving signature enforces itself (so TF Serving is protected too), and
the warm-up requests every export carries (trainer/export.py).

The model is the contract tests' tiny untrained line model (serving.contract_models), exported
as the Trainer exports line models.
"""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from test_serving_fuzz import BOMBS, OK_PNG, bomb_png, encoded

from serving.contract_models import template_model
from serving.local_server.models import Servable
from trainer.export import WARMUP_FILE
from transform.preprocessing import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_PIXELS,
    check_image_headers,
    image_header_sizes,
)


@pytest.fixture(scope="module")
def serve():
    return tf.saved_model.load(str(template_model())).signatures["serving_default"]


def run(serve, images: list) -> dict:
    return serve(image_bytes=tf.constant(images, tf.string))


def test_header_sizes_match_the_decoded_sizes():
    images = [
        encoded("PNG", size=(40, 20)),
        encoded("JPEG", "RGB", (300, 17)),
        encoded("GIF", size=(33, 7)),
        encoded("BMP", "RGB", (5, 6)),
        encoded("JPEG", "CMYK", (9, 4)),
        b"not an image",
    ]
    sizes = image_header_sizes(tf.constant(images)).numpy().tolist()
    decoded = [
        list(tf.io.decode_image(image, expand_animations=False).shape[:2]) for image in images[:-1]
    ]
    assert sizes == decoded + [[0, 0]]


@pytest.mark.parametrize("name", BOMBS)
def test_serving_signature_refuses_an_image_over_the_pixel_limit_naming_it(serve, name):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        run(serve, [OK_PNG, OK_PNG, BOMBS[name]()])
    assert "image_bytes[2] is " in error.value.message
    assert f"more than the limit of {DEFAULT_MAX_PIXELS} pixels per image" in error.value.message


def test_serving_signature_refuses_a_batch_over_the_limit(serve):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        run(serve, [OK_PNG] * (DEFAULT_MAX_BATCH + 1))
    assert (
        f"a request of {DEFAULT_MAX_BATCH + 1} images is more than the limit of "
        f"{DEFAULT_MAX_BATCH} images per request"
    ) in error.value.message
    assert run(serve, [OK_PNG] * DEFAULT_MAX_BATCH)["text"].shape == (DEFAULT_MAX_BATCH,)


def test_limits_are_export_time_settings():
    check = tf.function(lambda images: check_image_headers(images, max_pixels=100, max_batch=2))
    assert check(tf.constant([bomb_png(10, 10, rows=1)])).shape == (1,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="10x11 pixels.*limit of 100 pixels"):
        check(tf.constant([bomb_png(10, 11, rows=1)]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 2 images"):
        check(tf.constant([OK_PNG] * 3))


def test_model_refusal_reaches_clients_as_a_clear_invalid_argument(tmp_path):
    """With the local server's own header check out of the way, the model's check answers:
    INVALID_ARGUMENT (400), without TF's node names."""
    from serving.errors import ServingError

    servable = Servable("lines", 1, template_model())
    with pytest.raises(ServingError) as error:
        servable.run(
            "serving_default", {"image_bytes": np.array([BOMBS["png 20000x20000"]()], dtype=object)}
        )
    assert error.value.http_status == 400
    assert error.value.message == (
        f"image_bytes[0] is 20000x20000 pixels (width x height), more "
        f"than the limit of {DEFAULT_MAX_PIXELS} pixels per image "
        "(max_pixels)"
    )


def test_export_writes_one_warm_up_request_that_the_model_serves():
    path = template_model() / WARMUP_FILE
    records = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(path))
    ]
    assert len(records) == 1 and records[0].WhichOneof("log_type") == "predict_log"
    request = records[0].predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    (image,) = tf.make_ndarray(request.inputs["image_bytes"])
    assert tf.io.decode_png(image).shape[:2] == (28, 112)  # the model's own geometry
    assert Servable("lines", 1, template_model()).warm_up() == 1
