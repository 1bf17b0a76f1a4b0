"""The exported SavedModel's contract: signature names, input names and output conventions.

The trainer writes these, TFMA, the predictors, the local server and the clients read them.
"""

SERVING_SIGNATURE = "serving_default"  # encoded images -> predictions, for TF Serving
EXAMPLES_SIGNATURE = "from_examples"  # serialized tf.Example -> predictions, for TFMA
IMAGE_BYTES_INPUT = "image_bytes"  # serving_default's input: a batch of encoded images
EXAMPLES_INPUT = "examples"  # from_examples' input: a batch of serialized tf.Example

NO_CLASS = -1  # right-padding of decoded class indices in line models' `decoded` output
# Line models' per-character confidences, aligned with `text`, padded with NO_CLASS.
CHARACTER_CONFIDENCES = "character_confidences"
# The output that holds what was read: line models return `text`, character models `character`.
TEXT_OUTPUTS = ("text", "character")

# What one request may cost, enforced by the exported serving signature itself (checked from the
# image headers before decoding) and, earlier, by the local server and the app.
DEFAULT_MAX_PIXELS = 16 * 1024 * 1024  # per image (4096 x 4096); a page scan at 300 dpi is ~9 Mpx
DEFAULT_MAX_BATCH = 64  # images per model call; keep TF Serving's max_batch_size at or below it
