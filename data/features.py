"""Names of the tf.Example features every dataset in this project writes.

One place for them so the converters, the Transform and the Trainer cannot disagree.
"""

IMAGE_KEY = "image"  # PNG-encoded grayscale image, ink white on black, upright
LABEL_KEY = "label"  # int64 class index into the dataset's character list
CHARACTER_KEY = "character"  # the class as UTF-8 text, for humans and for slicing

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
