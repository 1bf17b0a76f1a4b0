"""EmnistLinesDataset: lines of Brown-corpus text drawn from EMNIST glyphs by Transform.

Each example carries only its text, a seed and a glyph set. The two glyph banks that draw them
(train glyphs for train lines, test glyphs for eval lines) are built in the pipeline by the
GlyphBanks step from the EMNIST character examples (`components.glyph_banks`), whose folder is
this dataset's resource; its Transform and Trainer find their paths in custom_config under
"glyph_banks", Transform to draw the lines, the Trainer to redraw them every epoch
(`resample_every_epoch`).
"""

from pathlib import Path

from data.features import EVAL_SPLIT, IMAGE_SIZE, TRAIN_SPLIT
from data.versions import text_digest, versioned_dir
from trainer.datasets.base import GLYPH_EXAMPLES, LineDataset

# custom_config and resource key (components.glyph_banks.BANKS_KEY): [train bank, test bank] paths
GLYPH_BANKS = "glyph_banks"
_SEED_STRIDE = 1_000_003  # seeds of redrawn lines: seed + epoch * stride


class EmnistLinesDataset(LineDataset):
    name = "EmnistLinesDataset"
    args = {
        "max_length": 34,
        "min_overlap": 0.0,
        "max_overlap": 0.33,
        "num_train": 10000,
        "num_eval": 1000,
        "resample_every_epoch": False,
    }
    schema = "emnist_lines"
    preprocessing_fn = "transform.line_preprocessing.preprocessing_fn"
    resources = (GLYPH_EXAMPLES,)

    def validate(self, args: dict) -> None:
        if args["min_overlap"] > args["max_overlap"]:
            raise ValueError("dataset_args.min_overlap must not exceed max_overlap")

    def image_shape(self, args: dict) -> tuple:
        return (IMAGE_SIZE, args["max_length"] * IMAGE_SIZE, 1)

    def synthesis(self, args: dict) -> dict:
        """The drawing arguments of transform.line_synthesis.synthesize_lines."""
        return {key: args[key] for key in ("max_length", "min_overlap", "max_overlap")}

    def prepare(self, config, source: str | None, work_dir: str) -> tuple:
        """Text windows of the sentence corpus (the Brown corpus when NLTK finds it, else the
        shipped sample; see data.sentences), and as resource the EMNIST character examples the
        glyph banks are built from: the character dataset's, prepared from the official EMNIST
        files under `source`, else the embedded sample."""
        from data.sentences import load_sentences, locate_sentences
        from trainer.config import ExperimentConfig
        from trainer.datasets.emnist import EmnistDataset

        characters = ExperimentConfig.from_dict({"dataset": EmnistDataset.name})
        glyph_examples, _ = EmnistDataset().prepare(characters, source, work_dir)
        origin = locate_sentences()
        print(f"{self.name}: sentences from {origin}", flush=True)
        sentences = load_sentences()
        args = config.dataset_args
        with versioned_dir(
            Path(work_dir) / "line_examples",
            ["lines", origin, args],
            dataset=self.name,
            source=origin,
            inputs={"sentences": text_digest("\n".join(sentences))},
            args=args,
        ) as (out, partial):
            if partial:
                _write_examples(sentences, partial, args)
        return out, {GLYPH_EXAMPLES: str(glyph_examples)}

    def transform_config(self, config, resources: dict) -> dict:
        return {"synthesis": self.synthesis(config.dataset_args)}

    def training_data(self, train, config, custom_config: dict) -> tuple:
        if not config.dataset_args["resample_every_epoch"]:
            return train, []
        import tensorflow as tf

        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        redrawn = redraw_every_epoch(train, config, custom_config[GLYPH_BANKS], epoch)
        return redrawn, [_epoch_counter(epoch)]

    def eval_example(self, config, examples_dir, resources: dict) -> tuple:
        from data.sentences import read_line_examples
        from transform.line_synthesis import load_glyph_bank, synthesize_lines

        texts, seeds = read_line_examples(examples_dir, EVAL_SPLIT)
        bank = load_glyph_bank(resources[GLYPH_BANKS][1])
        images, _ = synthesize_lines(
            texts[:1], seeds[:1], bank, **self.synthesis(config.dataset_args)
        )
        return (images[0].numpy() * 255).round().astype("uint8"), texts[0]


def redraw_every_epoch(dataset, config, bank_paths: list, epoch):
    """Replaces each training line's image by a fresh drawing for the current epoch."""
    import tensorflow as tf

    from data.features import GLYPH_SET_KEY, IMAGE_KEY, SEED_KEY, TEXT_KEY
    from transform.line_preprocessing import draw_lines
    from transform.line_synthesis import load_glyph_bank

    banks = [load_glyph_bank(path) for path in bank_paths]
    synthesis = EmnistLinesDataset().synthesis(config.dataset_args)

    def redraw(features, labels):
        seeds = features[SEED_KEY] + tf.cast(epoch, tf.int64) * _SEED_STRIDE
        images, _ = draw_lines(features[TEXT_KEY], seeds, features[GLYPH_SET_KEY], banks, synthesis)
        return {**features, IMAGE_KEY: images}, labels

    return dataset.map(redraw)


def _epoch_counter(variable):
    """A Keras callback that keeps `variable` at the current epoch."""
    import keras

    class EpochCounter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            variable.assign(epoch)

    return EpochCounter()


def _write_examples(sentences: list, out: Path, args: dict) -> None:
    from data.sentences import sentence_windows, write_line_examples

    sizes = {TRAIN_SPLIT: args["num_train"], EVAL_SPLIT: args["num_eval"]}
    for glyph_set, split in enumerate((TRAIN_SPLIT, EVAL_SPLIT)):
        texts = sentence_windows(sentences, args["max_length"], sizes[split], seed=glyph_set)
        write_line_examples(texts, out, split, seed=glyph_set, glyph_set=glyph_set)
