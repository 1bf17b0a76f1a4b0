"""The FSDL 2019 labs' line detector: a fully convolutional network that labels every pixel of a
page as background, odd line or even line (common.pages).

Lines are long and thin, so each pixel needs context far along the line but no downsampling of
its position: `blocks` residual blocks of dilated convolutions (one `kernel_size` convolution per
entry of `dilations`, by default 7x7 dilated 3 then 7), `filters` channels throughout, no
pooling, then a 1x1 convolution to the class softmax. With the defaults each block widens the
receptive field by 60 pixels, 421 in all: most of a 256-pixel page. Spatial dimensions are left
open (None), so the same weights label a page of any size; training feeds fixed S x S pages.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a network is built, so the config reads
    import keras  # the builders' signatures without loading TensorFlow


def check_input(input_shape: tuple, output_length=None, dilations: list | None = None, **_) -> None:
    """`dilations` must be a non-empty list of whole numbers >= 1 (the config checks only that it
    is a list): plain arithmetic, checked before TensorFlow loads."""
    if dilations is not None and (
        not dilations
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dilations)
    ):
        raise ValueError(
            f"network_args.dilations: expected a non-empty list of whole numbers >= 1, "
            f"got {dilations!r}"
        )


def line_detector_fcn(
    input_shape: tuple,
    num_classes: int,
    filters: int = 16,
    blocks: int = 7,
    kernel_size: int = 7,
    dilations: list = [3, 7],  # noqa: B006 - read, never mutated; a list so the config takes one
) -> "keras.Model":
    """Per-pixel class probabilities [batch, height, width, num_classes] for pages
    [batch, height, width, channels] of any height and width."""
    import keras

    check_input(input_shape, dilations=dilations)
    inputs = keras.Input(shape=(None, None, input_shape[-1]), name="image")
    x = inputs
    for _ in range(blocks):
        shortcut = keras.layers.Conv2D(filters, 1)(x)  # matches the channels of the block's input
        y = x
        for index, dilation in enumerate(dilations):
            last = index == len(dilations) - 1
            y = keras.layers.Conv2D(
                filters,
                kernel_size,
                dilation_rate=dilation,
                padding="same",
                activation=None if last else "relu",
            )(y)
        x = keras.layers.Activation("relu")(keras.layers.Add()([y, shortcut]))
    outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="line_detector_fcn")
