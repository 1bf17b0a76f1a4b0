"""EmnistLinesDataset: lines of Brown-corpus text drawn from EMNIST glyphs by Transform.

Each example carries only its text, a seed and a glyph set; the two glyph banks (train glyphs for
train lines, test glyphs for eval lines) are the dataset's resources, read by Transform to draw
the lines and by the Trainer to redraw them every epoch (`resample_every_epoch`).
"""

from pathlib import Path

from data.features import EVAL_SPLIT, IMAGE_SIZE, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from trainer.datasets.base import LineDataset
from trainer.datasets.emnist import locate_emnist
from trainer.datasets.prepared import prepared_dir

GLYPH_BANKS = "glyph_banks"  # resource: [train bank path, test bank path]
# Glyphs kept per class in each bank: the banks are constants of the Transform graph.
MAX_GLYPHS_PER_CLASS = 300
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
    resources = (GLYPH_BANKS,)

    def validate(self, args: dict) -> None:
        if args["min_overlap"] > args["max_overlap"]:
            raise ValueError("dataset_args.min_overlap must not exceed max_overlap")

    def image_shape(self, args: dict) -> tuple:
        return (IMAGE_SIZE, args["max_length"] * IMAGE_SIZE, 1)

    def synthesis(self, args: dict) -> dict:
        """The drawing arguments of transform.line_synthesis.synthesize_lines."""
        return {key: args[key] for key in ("max_length", "min_overlap", "max_overlap")}

    def prepare(self, config, source: str | None, work_dir: str) -> tuple:
        """Text windows of the sentence corpus, and the two glyph banks to draw them: glyphs from
        the official EMNIST files under `source`, else from the embedded sample; sentences from
        the Brown corpus when NLTK finds it, else from the shipped sample (see data.sentences)."""
        from data.sentences import locate_sentences

        glyphs = locate_emnist(source, self.name)
        sentences = locate_sentences()
        print(f"{self.name}: sentences from {sentences}", flush=True)
        origin = "sample" if glyphs == SAMPLE_DIR else str(glyphs)
        args = config.dataset_args
        names = [f"glyphs-{split}.npz" for split in (TRAIN_SPLIT, EVAL_SPLIT)]
        identity = ["lines", origin, sentences, args]
        with prepared_dir(Path(work_dir) / "line_examples", identity) as (out, partial):
            if partial:
                _write_examples(None if glyphs == SAMPLE_DIR else str(glyphs), partial, args, names)
        return out, {GLYPH_BANKS: [str(out / name) for name in names]}

    def transform_config(self, config, resources: dict) -> dict:
        return {
            GLYPH_BANKS: list(resources[GLYPH_BANKS]),
            "synthesis": self.synthesis(config.dataset_args),
        }

    def trainer_config(self, config, resources: dict) -> dict:
        return {GLYPH_BANKS: list(resources[GLYPH_BANKS])}

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


def _write_examples(source: str | None, out: Path, args: dict, bank_names: list) -> None:
    from data.emnist import read_emnist
    from data.sentences import load_sentences, sentence_windows, write_line_examples
    from data.tfrecords import read_split
    from transform.line_synthesis import GlyphBank, save_glyph_bank

    sentences = load_sentences()
    sizes = {TRAIN_SPLIT: args["num_train"], EVAL_SPLIT: args["num_eval"]}
    for glyph_set, (split, bank_name) in enumerate(zip((TRAIN_SPLIT, EVAL_SPLIT), bank_names)):
        texts = sentence_windows(sentences, args["max_length"], sizes[split], seed=glyph_set)
        write_line_examples(texts, out, split, seed=glyph_set, glyph_set=glyph_set)
        if source:
            glyphs = read_emnist(source, "byclass", "train" if glyph_set == 0 else "test")
            images, labels = glyphs.images, glyphs.labels
        else:
            images, labels, _ = read_split(SAMPLE_DIR, split)
        bank = GlyphBank(images, labels, max_per_class=MAX_GLYPHS_PER_CLASS)
        save_glyph_bank(str(out / bank_name), bank)
