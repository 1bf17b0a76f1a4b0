"""Names of the tf.Example features every dataset in this project writes.

One place for them so the converters, the Transform and the Trainer cannot disagree.
"""

IMAGE_SIZE = 28  # EMNIST glyphs are 28x28; line images are 28 pixels high

IMAGE_KEY = "image"  # PNG-encoded grayscale image, ink white on black, upright
LABEL_KEY = "label"  # int64 class index into the dataset's character list
CHARACTER_KEY = "character"  # the class as UTF-8 text, for humans and for slicing

DEFAULT_NUM_SHARDS = 4  # GZIP TFRecord shards per split

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"

# Line examples (EMNIST lines): the text to draw and a per-line seed; Transform draws the image.
TEXT_KEY = "text"  # UTF-8 line transcription, only characters of data.vocabulary.GLYPH_CHARACTERS for drawn lines
SEED_KEY = "seed"  # int64 seed: the same seed draws the same glyphs and overlaps
LENGTH_KEY = "length"  # int64 number of characters, for slicing metrics by line length
GLYPH_SET_KEY = "glyph_set"  # int64: which glyph bank draws the line (0: train glyphs, 1: test)

# Real handwriting lines (data.lines: PAGE-XML, ALTO, IAM). IMAGE_KEY holds the line crop as a
# grayscale PNG in the source's polarity (dark ink on light paper) and TEXT_KEY its text mapped
# into data.vocabulary.LINE_CHARACTERS (data.charset).
SOURCE_KEY = "source"  # UTF-8 input format: "pagexml", "alto" or "iam"
DOCUMENT_KEY = "document"  # UTF-8 document (folder, IAM form) the line comes from
PAGE_KEY = "page"  # UTF-8 page id, the unit of the train/eval split
WRITER_KEY = "writer"  # UTF-8 writer id, empty when unknown

# Page examples (data.pages: real pages; transform.page_synthesis: EMNIST pages): IMAGE_KEY is the
# page PNG as scanned (gray, dark ink on light paper), common.pages.MASK_KEY its target mask,
# TEXT_KEY its lines' texts in reading order joined by newlines, plus the provenance keys above.
LINE_COUNT_KEY = "line_count"  # int64 lines in the page's mask (lines without text included)
