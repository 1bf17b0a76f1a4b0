"""What the prediction app accepts: the image (and model version) of a predict request, checked.

`read_request` takes a JSON body (`{"image": "data:image/png;base64,...", "version": 2}`, or
bare base64) or a multipart/form-data upload (field `image`; the form itself is parsed by
Starlette with python-multipart); `fetch_image_url` fetches FSDL's `?image_url=` from an allowed
host; `check_header` (serving.images: the size from the header, before decoding) and
`image_stats` look at the image before it is sent to the model server. Each refusal is a
ServingError with the HTTP status to answer.
"""

import base64
import binascii
import io
import json
import re
import time
import urllib.parse

import numpy as np
import requests
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from serving.errors import ServingError

MODEL_FORMATS = {"PNG", "JPEG", "GIF", "BMP"}  # what the exported models decode
STATS_SIZE = 1024  # image statistics are computed on the image reduced to fit this square
INT64_MAX = 2**63 - 1  # the largest model version TF Serving takes
IMAGE_URL_SECONDS = 10.0  # the whole fetch of an ?image_url=, connection to last byte
refused = ServingError.from_http


async def read_request(request: Request, body: bytes, max_image_bytes: int) -> tuple:
    """(image bytes, version or None) of a predict request whose body has been read."""
    if not body:
        raise refused(400, "empty request body; send an image")
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    query_version = request.query_params.get("version")
    if media_type == "application/json":
        try:
            payload = json.loads(body)
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, a number too long
            raise refused(400, f"request body is not valid JSON ({e})") from None
        except RecursionError:
            raise refused(400, "request body is not valid JSON (nested too deeply)") from None
        if not isinstance(payload, dict):
            raise refused(400, f"JSON body must be an object, got {type(payload).__name__}")
        if "image" not in payload:
            raise refused(400, "missing field 'image' (a base64 data URL of the image)")
        image = decode_data_url(payload["image"])
        version = parse_version(payload.get("version", query_version))
    elif media_type == "multipart/form-data":
        fields = await _form(request, body, content_type)
        if "image" not in fields:
            raise refused(400, "missing field 'image' (the uploaded image file)")
        image = fields["image"]
        image = image.encode("utf-8") if isinstance(image, str) else image  # a plain text field
        version = parse_version(fields.get("version", query_version))
    else:
        raise refused(
            415,
            f"unsupported content type {media_type or '(none)'}; "
            "send application/json or multipart/form-data",
        )
    if not image:
        raise refused(400, "field 'image' is empty")
    if len(image) > max_image_bytes:
        raise refused(413, f"image is {len(image)} bytes, more than the limit of {max_image_bytes}")
    return image, version


async def _form(request: Request, body: bytes, content_type: str) -> dict:
    """{field name: bytes or text} of a multipart/form-data body already read (and limited)."""
    if "boundary=" not in content_type:
        raise refused(400, "multipart/form-data request without a boundary")

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form() as form:
            return {
                name: await value.read() if isinstance(value, UploadFile) else value
                for name, value in form.items()
            }
    except HTTPException as e:  # Starlette's answer to a malformed form
        raise refused(400, f"malformed multipart/form-data body ({e.detail})") from None


def image_stats(data: bytes) -> dict:
    """Width, height, mean intensity (0-255, gray) and size of an image whose header is within
    the limits; 400 if PIL cannot read it, 415 for a format the models do not decode. The mean
    is taken on the image reduced to fit STATS_SIZE pixels square, so its cost stays small."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image_format = image.format
            if image_format not in MODEL_FORMATS:
                raise refused(
                    415, f"unsupported image format {image_format}; send PNG, JPEG, GIF or BMP"
                )
            image.thumbnail((STATS_SIZE, STATS_SIZE))  # decodes it (JPEG: at a reduced scale)
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    except Image.DecompressionBombError as e:
        raise refused(413, f"image has too many pixels ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        reason = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e))
        raise refused(
            400, f"{len(data)} bytes of image data: not a readable image ({reason})"
        ) from None
    # Gray, composited over white paper as the model does (0: black, 255: white).
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = rgba[..., 3] / 255.0
    pixels = gray * alpha + 255.0 * (1.0 - alpha)
    return {
        "width": width,
        "height": height,
        "mean_intensity": round(float(pixels.mean()), 2),
        "bytes": len(data),
        "format": image_format,
    }


def fetch_image_url(url: str, allowed_hosts: frozenset, max_bytes: int) -> bytes:
    """The image at `url` (FSDL's `GET /v1/predict?image_url=`): only http(s) from a host on
    `allowed_hosts` (403 otherwise, so the app cannot be made to reach arbitrary addresses),
    without following redirects, at most `max_bytes` (413) within IMAGE_URL_SECONDS (504)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refused(400, "image_url must be an http:// or https:// URL")
    if parts.hostname.lower() not in allowed_hosts:
        raise refused(
            403,
            f"image_url host {parts.hostname!r} is not allowed (the app's --image-url-host list)",
        )
    deadline = time.monotonic() + IMAGE_URL_SECONDS
    try:
        with requests.get(
            url, stream=True, allow_redirects=False, timeout=IMAGE_URL_SECONDS
        ) as response:
            if response.status_code != 200:
                raise refused(502, f"image_url answered HTTP {response.status_code}")
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                if len(data) > max_bytes:
                    raise refused(413, f"image_url is more than the limit of {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise refused(504, f"image_url not fetched within {IMAGE_URL_SECONDS:g} s")
    except requests.Timeout:
        raise refused(504, f"image_url not fetched within {IMAGE_URL_SECONDS:g} s") from None
    except requests.RequestException as e:
        raise refused(502, f"could not fetch image_url ({type(e).__name__})") from None
    return bytes(data)


def decode_data_url(value) -> bytes:
    """Bytes of `data:image/...;base64,<data>` or of bare base64."""
    if not isinstance(value, str):
        raise refused(400, f"field 'image' must be a base64 string, got {type(value).__name__}")
    if value.startswith("data:"):
        header, sep, value = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise refused(
                400, "field 'image' must be a base64 data URL (data:image/png;base64,...)"
            )
    value = value.strip()
    if not value:
        raise refused(400, "field 'image' is empty")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise refused(400, f"field 'image' is not valid base64 ({e})") from None


def parse_version(value):
    """The requested model version (JSON number, form field or query text), or None."""
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,19}", text) or int(text) > INT64_MAX:
        raise refused(
            400,
            f"'version' must be a positive integer of at most {INT64_MAX}, got {str(value)[:40]!r}",
        )
    return int(text)
