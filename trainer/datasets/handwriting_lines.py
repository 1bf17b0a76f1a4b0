"""Real handwriting lines: PageXmlLinesDataset, AltoLinesDataset and IamLinesDataset.

Each reads a folder (PAGE-XML or ALTO pages with their images, or IAM in its official layout)
through data.lines, which crops the lines, maps their text into the line charset and splits by
page (IAM: by the official task split) into train/eval TFRecords. Transform normalizes the
images to a fixed height, left-aligned in a maximum width (transform.handwriting_preprocessing),
metrics are sliced by line length and by source, and the Trainer can augment training batches.

The folder: `dataset_args.path`, else `--data-dir`, else the dataset's environment variable,
else its folder under ../shared/data (data.locations).
"""

from pathlib import Path

from data.features import EVAL_SPLIT, SOURCE_KEY
from data.versions import file_digests, versioned_dir
from trainer.datasets.base import LineDataset, PageFolderDataset

# The Trainer's augmentation (transform/augmentation.py) of training batches, and how strong.
AUGMENT_ARGS = {"augment": False, "augment_strength": 1.0}
MAX_AUGMENT_STRENGTH = 2.0


class HandwritingLinesDataset(PageFolderDataset, LineDataset):
    args = {
        "path": "",
        "max_length": 72,
        "height": 64,
        "max_width": 2048,
        "eval_fraction": 0.1,
        "eval_pages": "",
        **AUGMENT_ARGS,
    }
    schema = "handwriting_lines"
    preprocessing_fn = "transform.handwriting_preprocessing.preprocessing_fn"
    slice_features = (SOURCE_KEY,)
    stretch_contrast = True

    def validate(self, args: dict) -> None:
        super().validate(args)
        if args["augment_strength"] > MAX_AUGMENT_STRENGTH:
            raise ValueError(
                f"dataset_args.augment_strength must be at most {MAX_AUGMENT_STRENGTH}"
            )

    def image_shape(self, args: dict) -> tuple:
        return (args["height"], args["max_width"], 1)

    def prepare(self, config, source: str | None, work_dir: str) -> tuple:
        from data.lines import convert

        args = config.dataset_args
        folder, eval_pages = self.locate_pages(args, source)
        identity = [
            self.format,
            str(folder),
            args["max_length"],
            args["eval_fraction"],
            sorted(eval_pages),
        ]
        with versioned_dir(
            Path(work_dir) / "handwriting_lines",
            identity,
            dataset=self.name,
            source=str(folder),
            inputs=file_digests(folder),
            args={key: args[key] for key in ("max_length", "eval_fraction", "eval_pages")},
        ) as (out, partial):
            if partial:
                convert(
                    self.format,
                    folder,
                    partial,
                    args["eval_fraction"],
                    0,
                    eval_pages,
                    max_length=args["max_length"],
                )
        return out, {}

    def transform_config(self, config, resources: dict) -> dict:
        return {key: config.dataset_args[key] for key in ("height", "max_width", "max_length")}

    def training_data(self, train, config, custom_config: dict) -> tuple:
        if not config.dataset_args["augment"]:
            return train, []
        from transform.augmentation import augment_dataset

        return augment_dataset(train, config.dataset_args["augment_strength"]), []

    def eval_example(self, config, examples_dir, resources: dict) -> tuple:
        from data.lines import read_line_images

        images, texts = read_line_images(examples_dir, EVAL_SPLIT, limit=1)
        return images[0], texts[0]


class PageXmlLinesDataset(HandwritingLinesDataset):
    name = "PageXmlLinesDataset"
    format = "pagexml"


class AltoLinesDataset(HandwritingLinesDataset):
    name = "AltoLinesDataset"
    format = "alto"


class IamLinesDataset(HandwritingLinesDataset):
    name = "IamLinesDataset"
    format = "iam"
