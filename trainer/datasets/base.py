"""What a dataset is: the one place that says how its examples are made, checked, transformed
and evaluated.

A dataset names its `dataset_args` with their defaults, its curated schema (a folder of
`schemas/`), its Transform `preprocessing_fn` (by dotted path, so Kubeflow images need no module
file), how its train/eval TFRecords are prepared from a source, which side inputs its pipeline
needs ("resources", e.g. EMNIST examples for glyph banks), its TFMA EvalConfig and blessing
thresholds, and the name its models are served under. The config, the tasks and both runners look a dataset
up once in `trainer.datasets.DATASETS`.

Datasets are importable without TensorFlow; methods that need it import it when called.
"""

from common.push_layout import CHARACTERS_MODEL, LINES_MODEL
from trainer.models.base import CHARACTERS, LINES

# Where each format of page folders is found (data.locations): its environment variable and its
# folder under ../shared/data, if any.
FOLDER_LOCATIONS = {
    "pagexml": ("PAGEXML_DIR", "htr/hooker"),
    "alto": ("ALTO_DIR", None),
    "iam": ("IAM_DIR", None),
}

# Resource: a folder of EMNIST character examples (train/, eval/ TFRecords) from which the
# pipeline builds glyph banks (components.glyph_banks) for Transform and the Trainer to draw with.
GLYPH_EXAMPLES = "glyph_examples"


class Dataset:
    name: str
    provides: str  # CHARACTERS or LINES: which model kinds can train on it
    args: dict  # allowed dataset_args and their defaults
    schema: str  # folder under schemas/ holding schema.pbtxt
    preprocessing_fn: str  # dotted path of the Transform preprocessing_fn
    model_name: str  # the served model's name (and the pipeline's)
    thresholds: dict  # blessing thresholds and their defaults
    best_metric: str  # the validation metric the Trainer keeps the best epoch by (Keras logs)
    threshold_help: dict  # what each threshold means, for the command lines
    evaluate_transformed: bool = False  # TFMA reads Transform's output instead of raw examples
    resources: tuple = ()  # names of the side inputs prepare() returns (e.g. GLYPH_EXAMPLES)
    slice_features: tuple = ()  # features to slice metrics by (lines: besides line length)
    stretch_contrast: bool = False  # served images get Transform's contrast stretch (real scans)

    @property
    def num_classes(self) -> int:
        """The network's output classes."""
        raise NotImplementedError

    @property
    def charset(self) -> tuple:
        """The character of each output class (padding and blank excluded)."""
        raise NotImplementedError

    def validate(self, args: dict) -> None:
        """Raises ValueError naming the key for arguments that are valid one by one but not
        together (checked before TensorFlow loads)."""

    def image_shape(self, args: dict) -> tuple:
        """The shape of one transformed image, [height, width, 1]."""
        raise NotImplementedError

    def prepare(self, config, source: str | None, work_dir: str) -> tuple:
        """Writes (or finds, if already written) the train/eval TFRecords; returns
        (examples dir, {resource name: value})."""
        raise NotImplementedError

    def transform_config(self, config, resources: dict) -> dict:
        """Transform's custom_config."""
        return {}

    def trainer_config(self, config, resources: dict) -> dict:
        """What the Trainer reads besides the experiment config."""
        return {}

    def eval_config(self, thresholds: dict):
        raise NotImplementedError

    def training_data(self, train, config, custom_config: dict) -> tuple:
        """(train dataset, extra Keras callbacks): a hook to change training batches (redrawn
        lines, augmentation) for the train split only."""
        return train, []

    def eval_example(self, config, examples_dir, resources: dict) -> tuple:
        """(image as a uint8 array, its truth) of the first eval example, as a user would send it."""
        raise NotImplementedError

    def blessing_thresholds(self, given: dict) -> dict:
        """This dataset's thresholds: its defaults, overridden by the `given` ones it uses."""
        return {
            key: given.get(key) if given.get(key) is not None else default
            for key, default in self.thresholds.items()
        }


def add_threshold_flags(parser, datasets) -> None:
    """One `--threshold-name` flag per blessing threshold of `datasets` (default: the dataset's)."""
    seen: dict[str, str] = {}
    for dataset in datasets:
        for name, default in dataset.thresholds.items():
            seen.setdefault(name, f"{dataset.threshold_help[name]} (default {default})")
    for name, text in seen.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float, help=text)


def thresholds_given(args, datasets) -> dict:
    """The threshold flags a user set, by name (the rest stay each dataset's default)."""
    return {
        name: value
        for name, value in vars(args).items()
        if value is not None and any(name in d.thresholds for d in datasets)
    }


class PageFolderDataset(Dataset):
    """Converted from a folder of real pages in `format` (PAGE-XML, ALTO or IAM's layout) and
    split by page: the line datasets and the page datasets of one format read the same folder,
    found the same way, with the same dataset_args `path`, `eval_fraction` and `eval_pages`."""

    format: str  # a key of FOLDER_LOCATIONS, data.lines.READERS and data.pages.READERS

    def validate(self, args: dict) -> None:
        super().validate(args)
        if not 0 < args["eval_fraction"] < 1:
            raise ValueError("dataset_args.eval_fraction must be in (0, 1)")

    def locate_pages(self, args: dict, source: str | None) -> tuple:
        """(folder, eval page ids): `dataset_args.path`, else `source` (--data-dir), else the
        format's environment variable, else its shared folder; says which it uses."""
        from data.lines import read_page_list
        from data.locations import locate

        env_var, shared_subdir = FOLDER_LOCATIONS[self.format]
        folder, how = locate(
            args["path"] or source, env_var, shared_subdir, what=f"{self.name} folder"
        )
        print(f"{self.name}: reading {folder} ({how})", flush=True)
        return folder, read_page_list(args["eval_pages"]) if args["eval_pages"] else ()


class CharacterDataset(Dataset):
    provides = CHARACTERS
    model_name = CHARACTERS_MODEL
    thresholds = {"min_accuracy": 0.5, "max_accuracy_drop": 0.01}
    best_metric = "val_accuracy"
    threshold_help = {
        "min_accuracy": "characters: blessing needs at least this accuracy",
        "max_accuracy_drop": "characters: blessing allows at most this accuracy drop from the "
        "latest blessed model",
    }
    characters: tuple  # the class of each label index

    @property
    def num_classes(self) -> int:
        return len(self.characters)

    @property
    def charset(self) -> tuple:
        return self.characters

    def eval_config(self, thresholds: dict):
        from evaluation.eval_configs import characters_eval_config

        return characters_eval_config(**thresholds)


class LineDataset(Dataset):
    """Lines of text; labels index data.vocabulary.LINE_CHARACTERS, padded to `max_length`."""

    provides = LINES
    model_name = LINES_MODEL
    thresholds = {"max_cer": 0.5, "max_cer_increase": 0.01}
    best_metric = "val_cer"
    threshold_help = {
        "max_cer": "lines: blessing needs at most this character error rate",
        "max_cer_increase": "lines: blessing allows at most this CER increase over the latest "
        "blessed model",
    }
    evaluate_transformed = True  # TFMA reads the normalized line images Transform writes

    @property
    def num_classes(self) -> int:
        from data.vocabulary import NUM_LINE_CLASSES

        return NUM_LINE_CLASSES

    @property
    def charset(self) -> tuple:
        from data.vocabulary import LINE_CHARACTERS

        return LINE_CHARACTERS

    def eval_config(self, thresholds: dict):
        from evaluation.eval_configs import lines_eval_config

        return lines_eval_config(**thresholds, slice_features=self.slice_features)
