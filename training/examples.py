"""Prepares the directory of train/eval TFRecords that ImportExampleGen ingests.

The glyph source is either the official EMNIST files (`--data-dir`: a directory or `gzip.zip`)
or, by default, the embedded sample. `dataset_args` (subsampling, class balancing; line sizes)
are applied here, once, and the result is kept under a name derived from the source and the
arguments, so a rerun finds the same files and the pipeline's cache holds.
"""

import hashlib
import json
import shutil
from pathlib import Path
from typing import Optional

from data.emnist import BYCLASS_CHARACTERS, read_emnist
from data.errors import DatasetError
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.sample import SAMPLE_DIR
from data.sentences import load_sentences, sentence_windows, write_line_examples
from data.tfrecords import balance_classes, convert_emnist, read_split, subsample, write_split
from training.config import DATASET_ARGS, ExperimentConfig
from transform.line_synthesis import GlyphBank, save_glyph_bank

COMPLETE_MARKER = "_COMPLETE"
# Glyphs kept per class in each bank: the banks are constants of the Transform graph.
MAX_GLYPHS_PER_CLASS = 300


def prepare_examples(config: ExperimentConfig, data_dir: Optional[str], work_dir: str) -> Path:
    args = config.dataset_args
    if data_dir is None and args == DATASET_ARGS[config.dataset]:
        return SAMPLE_DIR
    source = Path(data_dir).resolve() if data_dir else SAMPLE_DIR
    if not source.exists():
        raise DatasetError(f"--data-dir {data_dir}: no such file or directory")
    key = hashlib.sha256(json.dumps([str(source), args], sort_keys=True).encode()).hexdigest()[:12]
    out = Path(work_dir) / "examples" / key
    if (out / COMPLETE_MARKER).exists():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fraction = args["subsample_fraction"]
    if data_dir:
        convert_emnist(source, partial, fraction if fraction < 1 else None, args["balance"])
    else:
        for split in (TRAIN_SPLIT, EVAL_SPLIT):
            images, labels, _ = read_split(SAMPLE_DIR, split)
            if args["balance"]:
                images, labels = balance_classes(images, labels)
            images, labels = subsample(images, labels, fraction)
            write_split(images, labels, BYCLASS_CHARACTERS, partial, split)
    (partial / COMPLETE_MARKER).write_text(json.dumps({"source": str(source), **args}))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out


def prepare_line_examples(config: ExperimentConfig, data_dir: Optional[str], work_dir: str):
    """Line examples (text windows of the sentence corpus) and the two glyph banks to draw them:
    returns (examples dir, [train bank path, test bank path]). Glyphs come from the official EMNIST
    files under `data_dir`, else from the embedded sample; sentences from the Brown corpus when
    NLTK finds it, else from the shipped sample (see data.sentences)."""
    args = config.dataset_args
    source = str(Path(data_dir).resolve()) if data_dir else "sample"
    if data_dir and not Path(data_dir).exists():
        raise DatasetError(f"--data-dir {data_dir}: no such file or directory")
    key = hashlib.sha256(json.dumps(["lines", source, args], sort_keys=True).encode()).hexdigest()
    out = Path(work_dir) / "line_examples" / key[:12]
    banks = [str(out / f"glyphs-{split}.npz") for split in (TRAIN_SPLIT, EVAL_SPLIT)]
    if (out / COMPLETE_MARKER).exists():
        return out, banks
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    sentences = load_sentences()
    sizes = {TRAIN_SPLIT: args["num_train"], EVAL_SPLIT: args["num_eval"]}
    for glyph_set, (split, bank) in enumerate(zip((TRAIN_SPLIT, EVAL_SPLIT), banks)):
        texts = sentence_windows(sentences, args["max_length"], sizes[split], seed=glyph_set)
        write_line_examples(texts, partial, split, seed=glyph_set, glyph_set=glyph_set)
        if data_dir:
            glyphs = read_emnist(data_dir, "byclass", "train" if glyph_set == 0 else "test")
            images, labels = glyphs.images, glyphs.labels
        else:
            images, labels, _ = read_split(SAMPLE_DIR, split)
        bank_file = partial / Path(bank).name
        save_glyph_bank(str(bank_file), GlyphBank(images, labels, max_per_class=MAX_GLYPHS_PER_CLASS))
    (partial / COMPLETE_MARKER).write_text(json.dumps({"source": source, **args}))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out, banks
