"""Class indices of line models: the 62 EMNIST ByClass characters, then space, then padding.

Per-position models predict PAD_INDEX after the end of the text; CTC models use it as the blank.
"""

from data.emnist import BYCLASS_CHARACTERS

LINE_CHARACTERS = BYCLASS_CHARACTERS + (" ",)
SPACE_INDEX = LINE_CHARACTERS.index(" ")
PAD_INDEX = len(LINE_CHARACTERS)
NUM_LINE_CLASSES = PAD_INDEX + 1
