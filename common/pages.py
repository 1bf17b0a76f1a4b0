"""The page contract shared by the line detector (trainer, export), the page data and the page
clients (post-processing, recognizer, app): class indices and the detector's served output.

The detector labels each pixel of a page, resized to its input size, as background or as part of
an odd or an even line (lines alternate in reading order, so touching lines stay apart). Its
`serving_default` takes `image_bytes` (common.signatures) and returns LINE_PROBABILITIES,
float32 [N, height, width, 3] at the detector's resolution; callers scale regions back to the
page. Light module: imports nothing.

Page geometry is a plain stretch, no padding: a page of W x H pixels becomes S x S, so output
pixel (row i, column j) covers page rows [i*H/S, (i+1)*H/S) and columns [j*W/S, (j+1)*W/S).
Target masks (data.page_masks): the first line in reading order is ODD_LINE, the next EVEN_LINE,
and so on; a pixel inside two or more line polygons is BACKGROUND, so lines never merge. Page
examples store the page PNG as scanned and MASK_KEY at S x S; Transform
(transform.page_preprocessing) writes the image as IMAGE_KEY float32 [S, S, 1] (ink 1,
background 0) and the mask as data.features.LABEL_KEY int64 [S, S], the label every Trainer reads.
"""

BACKGROUND, ODD_LINE, EVEN_LINE = 0, 1, 2
PAGE_CLASSES = ("background", "odd_line", "even_line")
LINE_PROBABILITIES = "line_probabilities"  # serving_default output, [N, H, W, 3] float32
MASK_KEY = "mask"  # the page examples' target: uint8 class per pixel, encoded as PNG
