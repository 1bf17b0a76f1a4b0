"""Class indices of line models: the 62 EMNIST ByClass characters, space, the punctuation of real
handwriting (IAM's and the FSDL labs' set), then padding.

Synthetic EMNIST lines only ever contain GLYPH_CHARACTERS (EMNIST has no punctuation glyphs), but
they are labelled in the same index space as real lines, so a model trained on synthetic lines has
the output layer a real-line model needs and can warm-start it.

Per-position models predict PAD_INDEX after the end of the text; CTC models use it as the blank.
"""

from data.emnist import BYCLASS_CHARACTERS

GLYPH_CHARACTERS = BYCLASS_CHARACTERS + (" ",)  # what a line drawn from EMNIST glyphs can show
PUNCTUATION = tuple("!\"#&'()*+,-./:;?")
LINE_CHARACTERS = GLYPH_CHARACTERS + PUNCTUATION
SPACE_INDEX = LINE_CHARACTERS.index(" ")
PAD_INDEX = len(LINE_CHARACTERS)
NUM_LINE_CLASSES = PAD_INDEX + 1
