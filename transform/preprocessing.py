"""Transform's preprocessing: encoded image bytes -> normalized float images.

The same function runs in the Transform component over the training data and, through the
transform graph, inside every exported serving signature, so a user's PNG or JPEG of any size is
treated exactly like a training image.
"""

import tensorflow as tf

from common.signatures import DEFAULT_MAX_BATCH, DEFAULT_MAX_PIXELS
from data.features import IMAGE_KEY, IMAGE_SIZE, LABEL_KEY


def decode_images(
    image_bytes: tf.Tensor,
    height: int = IMAGE_SIZE,
    width: int = IMAGE_SIZE,
    left_align=False,
    stretch_contrast=False,
) -> tf.Tensor:
    """Decodes a batch of PNG/JPEG/GIF/BMP bytes to float32 [batch, height, width, 1] in [0, 1].

    Images are converted to one channel (transparency composited over white) and scaled to fit
    `height` x `width` keeping their aspect ratio, centred (characters) or left-aligned (lines,
    which are read from the left), with black padding. Like EMNIST, the models expect light ink on
    a dark background: an image whose mean intensity is above one half (dark ink on paper) is
    inverted first. With `stretch_contrast` (scans of real handwriting, whose paper is seldom
    white nor their ink black), the background level (the median) becomes 0 and the brightest
    ink 1 before scaling.
    """

    def decode_one(encoded: tf.Tensor) -> tf.Tensor:
        gray = decode_gray(encoded)
        if stretch_contrast:
            gray = stretch_levels(gray)
        return _fit(gray, height, width, left_align)

    images = tf.map_fn(
        decode_one,
        tf.reshape(image_bytes, [-1]),
        fn_output_signature=tf.TensorSpec([height, width, 1], tf.float32),
    )
    return tf.clip_by_value(images, 0.0, 1.0)


def decode_gray(encoded: tf.Tensor) -> tf.Tensor:
    """One encoded image (PNG/JPEG/GIF/BMP) -> float32 [H, W, 1] in [0, 1], ink bright on dark.

    Gray+alpha or RGBA is composited over white paper, as a viewer would show it; an image whose
    mean intensity is above one half (dark ink on paper) is inverted. Shared by the line and
    character decoder (decode_images) and the page decoder (transform.page_preprocessing), so
    every model sees a user's image the same way.
    """
    image = tf.image.convert_image_dtype(
        tf.io.decode_image(encoded, expand_animations=False), tf.float32
    )
    has_alpha = tf.equal(tf.shape(image)[-1] % 2, 0)
    alpha = tf.cond(has_alpha, lambda: image[..., -1:], lambda: tf.ones_like(image[..., :1]))
    color = tf.cond(has_alpha, lambda: image[..., :-1], lambda: image)
    gray = tf.cond(
        tf.equal(tf.shape(color)[-1], 3),
        lambda: tf.image.rgb_to_grayscale(color),
        lambda: color,
    )
    gray = alpha * gray + (1.0 - alpha)
    return tf.cond(tf.reduce_mean(gray) > 0.5, lambda: 1.0 - gray, lambda: gray)


def stretch_levels(gray: tf.Tensor) -> tf.Tensor:
    """Background (the median level) to 0, the brightest pixel to 1."""
    values = tf.sort(tf.reshape(gray, [-1]))
    background = values[tf.size(values) // 2]
    ink = values[-1]
    return tf.clip_by_value((gray - background) / tf.maximum(ink - background, 1e-3), 0.0, 1.0)


def _fit(image: tf.Tensor, height: int, width: int, left_align: bool) -> tf.Tensor:
    """Scales `image` to fit the frame keeping its aspect ratio, then pads it with black."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(height / size[0], width / size[1])
    new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    resized = tf.image.resize(image, new_size, antialias=True)
    top = (height - new_size[0]) // 2
    left = 0 if left_align else (width - new_size[1]) // 2
    return tf.image.pad_to_bounding_box(resized, top, left, height, width)


def preprocessing_fn(inputs: dict) -> dict:
    """tf.Transform entry point: decoded, normalized image and the integer label."""
    return {
        IMAGE_KEY: decode_images(inputs[IMAGE_KEY]),
        LABEL_KEY: tf.reshape(inputs[LABEL_KEY], [-1]),
    }


# --- bounded cost: image sizes from their headers, checked before decoding ---------------------

# SOFn markers (frame headers carrying the size); C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_JPEG_FRAMES = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def _uint(data: tf.Tensor, offset: int, size: int, big_endian: bool) -> tf.Tensor:
    """The unsigned integer of `size` bytes at `offset` of a uint8 (as int64) vector."""
    value = tf.constant(0, tf.int64)
    order = range(size) if big_endian else reversed(range(size))
    for index in order:
        value = value * 256 + data[offset + index]
    return value


def _bytes(padded: tf.Tensor, offset, size: int) -> tf.Tensor:
    """`size` bytes of a zero-padded string from `offset`, as an int64 vector."""
    return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, offset, size), tf.uint8), tf.int64)


def _jpeg_size(padded: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
    """[height, width] from a JPEG's first frame header (SOFn), walking its marker segments as
    libjpeg does; [-1, -1] when none comes before the scan data or the end (the walk stops at
    anything that is not a marker: libjpeg would skip such bytes, so the size is unknown)."""
    frames = tf.constant(_JPEG_FRAMES, tf.int64)

    def step(position, size):
        segment = _bytes(padded, position, 9)
        marker = segment[1]
        is_frame = tf.reduce_any(tf.equal(marker, frames))
        standalone = tf.logical_or(
            tf.equal(marker, 0x01), tf.logical_and(marker >= 0xD0, marker <= 0xD9)
        )
        stop = tf.logical_or(tf.not_equal(segment[0], 0xFF), tf.equal(marker, 0xDA))
        advance = tf.where(
            tf.equal(marker, 0xFF),
            tf.constant(1, tf.int64),
            tf.where(
                standalone, tf.constant(2, tf.int64), 2 + _uint(segment, 2, 2, big_endian=True)
            ),
        )
        found = tf.stack([_uint(segment, 5, 2, True), _uint(segment, 7, 2, True)])
        position = tf.where(tf.logical_or(stop, is_frame), length, position + advance)
        return position, tf.where(is_frame, found, size)

    _, size = tf.while_loop(
        lambda position, size: tf.logical_and(position + 4 <= length, size[0] < 0),
        step,
        (tf.constant(2, tf.int64), tf.constant([-1, -1], tf.int64)),
    )
    return size


def image_header_sizes(image_bytes: tf.Tensor) -> tf.Tensor:
    """int64 [batch, 2]: each image's (height, width) read from its header without decoding it,
    for the formats `tf.io.decode_image` takes (recognized by the same magic bytes): PNG (IHDR),
    JPEG (first SOFn frame header), GIF (logical screen; decode_image clips frames to it) and BMP
    (as TF's decoder reads it: int32 width and height at 18 and 22). (0, 0) for other data, which
    decode_image refuses anyway; (-1, -1) for a JPEG whose frame size cannot be found."""

    def size_of(encoded: tf.Tensor) -> tf.Tensor:
        padded = tf.strings.join([encoded, tf.constant(b"\0" * 32)])
        head = _bytes(padded, 0, 26)
        length = tf.cast(tf.strings.length(encoded), tf.int64)

        def starts(magic: bytes):
            return tf.reduce_all(tf.equal(head[: len(magic)], list(magic)))

        def signed32(offset):  # little-endian int32, as magnitude
            value = _uint(head, offset, 4, big_endian=False)
            return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

        png = tf.stack([_uint(head, 20, 4, True), _uint(head, 16, 4, True)])
        gif = tf.stack([_uint(head, 8, 2, False), _uint(head, 6, 2, False)])
        bmp = tf.stack([signed32(22), signed32(18)])
        return tf.case(
            [
                (starts(b"\xff\xd8\xff"), lambda: _jpeg_size(padded, length)),
                (starts(b"\x89PNG\r\n\x1a\n"), lambda: png),
                (starts(b"GIF8"), lambda: gif),
                (starts(b"BM"), lambda: bmp),
            ],
            default=lambda: tf.zeros([2], tf.int64),
            exclusive=False,
        )

    return tf.map_fn(
        size_of, tf.reshape(image_bytes, [-1]), fn_output_signature=tf.TensorSpec([2], tf.int64)
    )


def check_image_headers(
    image_bytes: tf.Tensor, max_pixels: int = DEFAULT_MAX_PIXELS, max_batch: int = DEFAULT_MAX_BATCH
) -> tf.Tensor:
    """`image_bytes` (flattened), once a batch of at most `max_batch` images, each of at most
    `max_pixels` pixels by its header, is checked; otherwise the call fails with
    INVALID_ARGUMENT naming the limit (and the first image over it by its index) before any
    image is decoded, so that a small compressed image of huge dimensions (a decompression
    bomb) or a huge batch costs nothing. For the serving signatures only: training data is
    trusted and decode_images itself is unchanged."""
    image_bytes = tf.reshape(image_bytes, [-1])
    count = tf.size(image_bytes, out_type=tf.int64)
    batch_ok = tf.debugging.Assert(
        count <= max_batch,
        [
            tf.strings.format(
                "a request of {} images is more than the limit of {} images per request (max_batch)",
                (count, max_batch),
            )
        ],
    )
    with tf.control_dependencies([batch_ok]):
        sizes = image_header_sizes(image_bytes)
    pixels = sizes[:, 0] * sizes[:, 1]
    bad = tf.where(tf.logical_or(pixels > max_pixels, sizes[:, 0] < 0))[:, 0]
    index = tf.concat([bad, [count]], 0)[0]  # the first image over the limit, else a zero row
    height, width = tf.unstack(tf.gather(tf.concat([sizes, tf.zeros([1, 2], tf.int64)], 0), index))
    message = tf.strings.format(
        "image_bytes[{}] is {}x{} pixels (width x height), more than the limit of {} pixels per "
        "image (max_pixels)",
        (index, width, height, max_pixels),
    )
    unknown = tf.strings.format(
        "image_bytes[{}]: JPEG without a readable frame size (SOFn marker) before its image data",
        (index,),
    )
    pixels_ok = tf.debugging.Assert(
        tf.equal(tf.size(bad), 0), [tf.where(height < 0, unknown, message)]
    )
    with tf.control_dependencies([pixels_ok]):
        return tf.identity(image_bytes)
