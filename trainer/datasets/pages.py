"""Page datasets for the line detector: PageXmlPagesDataset, AltoPagesDataset and
IamParagraphsDataset (real pages, data.pages) and EmnistPagesDataset (synthetic pages of EMNIST
lines, transform.page_synthesis).

All four write the same page examples: the page PNG as scanned and its target mask at
`page_size` x `page_size` (data.page_masks), so they share one schema (schemas/pages), one
Transform (transform.page_preprocessing: the page stretched to `page_size` square, ink 1 on 0, the
mask as the label) and one served model name (DETECTOR_MODEL). TFMA reads Transform's output and
gates on mean IoU (evaluation.eval_configs.pages_eval_config); the Trainer keeps the epoch of
the best `val_mean_iou` and, with `augment`, moves pages and masks alike
(transform.page_augmentation).

Real pages' folder: `dataset_args.path`, else `--data-dir`, else the dataset's environment
variable, else its folder under ../shared/data (data.locations), as for the line datasets, and
split by page the same way, so detector and line models never train on each other's eval pages.
"""

from pathlib import Path

from common.pages import PAGE_CLASSES
from common.push_layout import DETECTOR_MODEL
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.pages import DEFAULT_MAX_SIDE, DEFAULT_PAGE_SIZE
from data.versions import file_digests, text_digest, versioned_dir
from trainer.datasets.base import Dataset, PageFolderDataset
from trainer.models.base import PAGES

MIN_PAGE_SIZE = 32


class PageDataset(Dataset):
    provides = PAGES
    model_name = DETECTOR_MODEL
    schema = "pages"
    preprocessing_fn = "transform.page_preprocessing.preprocessing_fn"
    thresholds = {"min_mean_iou": 0.3, "max_mean_iou_drop": 0.01}
    best_metric = "val_mean_iou"
    threshold_help = {
        "min_mean_iou": "pages: blessing needs at least this mean IoU (background, odd, even)",
        "max_mean_iou_drop": "pages: blessing allows at most this mean IoU drop from the latest "
        "blessed detector",
    }
    evaluate_transformed = True  # TFMA reads the normalized pages and masks Transform writes
    num_classes = len(PAGE_CLASSES)
    charset = PAGE_CLASSES

    def validate(self, args: dict) -> None:
        if not MIN_PAGE_SIZE <= args["page_size"] <= DEFAULT_MAX_SIDE:
            raise ValueError(
                f"dataset_args.page_size must be in [{MIN_PAGE_SIZE}, {DEFAULT_MAX_SIDE}]"
            )

    def image_shape(self, args: dict) -> tuple:
        return (args["page_size"], args["page_size"], 1)

    def transform_config(self, config, resources: dict) -> dict:
        return {"page_size": config.dataset_args["page_size"]}

    def eval_config(self, thresholds: dict):
        from evaluation.eval_configs import pages_eval_config

        return pages_eval_config(**thresholds)

    def training_data(self, train, config, custom_config: dict) -> tuple:
        if not config.dataset_args["augment"]:
            return train, []
        from data.features import IMAGE_KEY
        from transform.page_augmentation import augment_pages

        def augment(features, masks):
            images, masks = augment_pages(features[IMAGE_KEY], masks)
            return {**features, IMAGE_KEY: images}, masks

        return train.map(augment), []

    def eval_example(self, config, examples_dir, resources: dict) -> tuple:
        """The first eval page as scanned (uint8 gray) and its text, lines joined by newlines."""
        from data.lines import read_line_images  # reads IMAGE_KEY and TEXT_KEY: pages have both

        images, texts = read_line_images(examples_dir, EVAL_SPLIT, limit=1)
        return images[0], texts[0]


class RealPagesDataset(PageFolderDataset, PageDataset):
    args = {
        "path": "",
        "page_size": DEFAULT_PAGE_SIZE,
        "eval_fraction": 0.1,
        "eval_pages": "",
        "augment": False,
    }

    def prepare(self, config, source: str | None, work_dir: str) -> tuple:
        from data.pages import convert

        args = config.dataset_args
        folder, eval_pages = self.locate_pages(args, source)
        kept = {key: args[key] for key in ("page_size", "eval_fraction")}
        with versioned_dir(
            Path(work_dir) / "pages",
            [self.format, str(folder), kept, sorted(eval_pages)],
            dataset=self.name,
            source=str(folder),
            inputs=file_digests(folder),
            args={**kept, "eval_pages": sorted(eval_pages)},
        ) as (out, partial):
            if partial:
                convert(
                    self.format,
                    folder,
                    partial,
                    args["page_size"],
                    args["eval_fraction"],
                    0,
                    eval_pages,
                )
        return out, {}


class PageXmlPagesDataset(RealPagesDataset):
    name = "PageXmlPagesDataset"
    format = "pagexml"


class AltoPagesDataset(RealPagesDataset):
    name = "AltoPagesDataset"
    format = "alto"


class IamParagraphsDataset(RealPagesDataset):
    name = "IamParagraphsDataset"
    format = "iam"


class EmnistPagesDataset(PageDataset):
    """Synthetic pages (transform.page_synthesis): train pages drawn with EMNIST's train glyphs,
    eval pages with its test glyphs, from the official files or the embedded sample."""

    name = "EmnistPagesDataset"
    args = {
        "page_size": DEFAULT_PAGE_SIZE,
        "max_length": 20,
        "max_lines": 24,
        "num_train": 1000,
        "num_eval": 100,
        "augment": False,
    }

    def prepare(self, config, source: str | None, work_dir: str) -> tuple:
        from data.sample import SAMPLE_DIR
        from data.sentences import load_sentences, locate_sentences
        from trainer.datasets.emnist import locate_emnist

        glyphs = locate_emnist(source, self.name)
        where = locate_sentences()
        print(f"{self.name}: sentences from {where}", flush=True)
        sentences = load_sentences()
        args = config.dataset_args
        inputs = {
            **{f"glyphs/{name}": digest for name, digest in file_digests(glyphs).items()},
            "sentences": text_digest("\n".join(sentences)),
        }
        origin = "sample" if glyphs == SAMPLE_DIR else str(glyphs)
        with versioned_dir(
            Path(work_dir) / "emnist_pages",
            ["emnist pages", origin, where, args],
            dataset=self.name,
            source=f"glyphs: {glyphs}; sentences: {where}",
            inputs=inputs,
            args=args,
        ) as (out, partial):
            if partial:
                _write_synthetic_pages(
                    None if glyphs == SAMPLE_DIR else glyphs, partial, args, sentences
                )
        return out, {}


def _write_synthetic_pages(glyphs: Path | None, out: Path, args: dict, sentences: list) -> None:
    """Both splits' pages: train glyphs (EMNIST's train part) for train, test glyphs for eval."""
    from tqdm import tqdm

    from data.pages import page_example
    from data.tfrecords import write_shards
    from transform.line_synthesis import emnist_glyph_bank
    from transform.page_synthesis import synthetic_pages

    for glyph_set, split in enumerate((TRAIN_SPLIT, EVAL_SPLIT)):
        bank = emnist_glyph_bank(glyphs, split)
        count = args["num_train" if split == TRAIN_SPLIT else "num_eval"]
        pages = synthetic_pages(
            sentences, bank, count, glyph_set, args["max_length"], args["max_lines"], split
        )
        examples = [
            page_example(page, args["page_size"]).example
            for page in tqdm(pages, total=count, desc=f"drawing {split} pages", unit="page")
        ]
        write_shards(examples, out, split)
