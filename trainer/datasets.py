"""The class list of each dataset, in label order: what a predicted index means."""

from data.emnist import BYCLASS_CHARACTERS

DATASET_CHARACTERS = {"EmnistDataset": BYCLASS_CHARACTERS}
