"""The page contract shared by the line detector (trainer, export), the page data and the page
clients (post-processing, recognizer, app): class indices and the detector's served output.

The detector labels each pixel of a page, resized to its input size, as background or as part of
an odd or an even line (lines alternate in reading order, so touching lines stay apart). Its
`serving_default` takes `image_bytes` (common.signatures) and returns LINE_PROBABILITIES,
float32 [N, height, width, 3] at the detector's resolution; callers scale regions back to the
page. Light module: imports nothing.
"""

BACKGROUND, ODD_LINE, EVEN_LINE = 0, 1, 2
PAGE_CLASSES = ("background", "odd_line", "even_line")
LINE_PROBABILITIES = "line_probabilities"  # serving_default output, [N, H, W, 3] float32
MASK_KEY = "mask"  # the page examples' target: uint8 class per pixel, encoded as PNG
