"""GlyphBanks: the glyph banks synthetic lines are drawn from, built inside the pipeline.

Transform draws EMNIST lines from two glyph banks (train glyphs for train lines, test glyphs for
eval lines; `transform.line_synthesis`). This component builds them from the train and eval splits
of an Examples artifact of EMNIST characters (a second ImportExampleGen), so a line pipeline
starts from EMNIST TFRecords and sentences alone, on every orchestrator, and ML Metadata records
which characters the banks, and so the drawn lines, came from.

TFX's Transform and Trainer take no extra artifacts and their custom_config is fixed when the
pipeline is built, so `Transform`, `Trainer` (and `Tuner`, trainer.tuner's) below are those with
one more input, `glyph_banks`, and executors that put the banks' paths into custom_config under
"glyph_banks" (the key `transform.line_preprocessing` and the dataset's `training_data` read)
before running the original executor. They are named by class path, so the same pipeline runs
locally and compiles for Kubeflow, where the GlyphBanks task feeds them like any other artifact.
"""

import functools
import os

import numpy as np
import tensorflow as tf
from tfx.components.trainer import component as trainer_component
from tfx.components.trainer import executor as trainer_executor
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import (
    artifact_utils,
    standard_artifact_utils,
    standard_artifacts,
    standard_component_specs,
)
from tfx.types.artifact import Artifact
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import json_utils

from data.errors import DatasetError
from data.features import EVAL_SPLIT, IMAGE_KEY, LABEL_KEY, TRAIN_SPLIT
from trainer.tuner import TrackedTuner, TrialsExecutor
from transform.line_synthesis import MAX_GLYPHS_PER_CLASS, GlyphBank, save_glyph_bank

COMPONENT_ID = "GlyphBanks"
BANKS_KEY = "glyph_banks"  # the output, the consumers' input and their custom_config key
EXAMPLES_KEY = "examples"
MAX_PER_CLASS_KEY = "max_per_class"
SOURCE_URI = "source_uri"
# Bank files in the artifact, in glyph-set order (0: train glyphs, 1: test glyphs).
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)
_BATCH = 4096
CUSTOM_CONFIG = standard_component_specs.CUSTOM_CONFIG_KEY


class GlyphBanks(Artifact):
    """The two banks, `glyphs-train.npz` and `glyphs-eval.npz` (transform.line_synthesis format),
    with custom properties `train_glyphs`, `eval_glyphs` (glyphs kept) and `source_uri` (the
    Examples they were built from). Custom, not declared, properties: KFP's schema for custom
    artifact types has none."""

    TYPE_NAME = "text_recognizer.GlyphBanks"  # namespaced: KFP's form for custom artifact types


def bank_paths(uri: str) -> list:
    """[train bank, eval bank] paths in a GlyphBanks artifact at `uri`."""
    return [os.path.join(uri, f"glyphs-{split}.npz") for split in SPLITS]


def run_bank_paths(nodes: dict) -> dict:
    """{"glyph_banks": [train, eval] paths} of a run's GlyphBanks step ({component id: NodeRun},
    see training.outputs), or {} when the run had none."""
    node = nodes.get(COMPONENT_ID)
    return {BANKS_KEY: bank_paths(node.outputs[BANKS_KEY][0].uri)} if node else {}


def read_glyphs(split_uri: str) -> tuple:
    """(uint8 images [N, 28, 28], int64 labels [N]) of EMNIST character examples in `split_uri`
    (GZIP TFRecords of tf.Example with a PNG `image` and a `label`, as ImportExampleGen writes)."""
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    if not files:
        raise DatasetError(f"{split_uri}: no TFRecord files of EMNIST character examples")
    spec = {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }

    def decode(records):
        features = tf.io.parse_example(records, spec)
        images = tf.map_fn(
            lambda png: tf.io.decode_png(png, channels=1)[..., 0],
            features[IMAGE_KEY],
            fn_output_signature=tf.TensorSpec([None, None], tf.uint8),
        )
        return images, features[LABEL_KEY]

    batches = (
        tf.data.TFRecordDataset(files, compression_type="GZIP")
        .batch(_BATCH)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    )
    images, labels = [], []
    try:
        for image_batch, label_batch in batches.as_numpy_iterator():
            images.append(image_batch)
            labels.append(label_batch)
    except tf.errors.OpError as e:
        raise DatasetError(
            f"{split_uri}: not EMNIST character examples (GZIP TFRecords of tf.Example with "
            f"a PNG '{IMAGE_KEY}' and an int '{LABEL_KEY}'): {e.message.splitlines()[0]}"
        ) from None
    if not labels:
        raise DatasetError(f"{split_uri}: no EMNIST character examples in {files}")
    return np.concatenate(images), np.concatenate(labels)


def build_glyph_banks(
    split_uris: list, out_uri: str, max_per_class: int = MAX_GLYPHS_PER_CLASS
) -> list:
    """Writes a bank of each folder of `split_uris` (EMNIST character TFRecords of the train, then
    the eval split) to bank_paths(out_uri); returns the glyphs kept in each."""
    tf.io.gfile.makedirs(out_uri)
    counts = []
    for split_uri, path in zip(split_uris, bank_paths(out_uri), strict=True):
        print(f"{COMPONENT_ID}: reading glyphs from {split_uri}", flush=True)
        images, labels = read_glyphs(split_uri)
        try:
            bank = GlyphBank(images, labels, max_per_class=max_per_class)
        except (ValueError, DatasetError) as e:
            raise DatasetError(f"{split_uri}: {e}") from None
        save_glyph_bank(path, bank)
        counts.append(len(bank))
    return counts


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        banks = artifact_utils.get_single_instance(output_dict[BANKS_KEY])
        split_uris = [standard_artifact_utils.get_split_uri([examples], s) for s in SPLITS]
        counts = build_glyph_banks(split_uris, banks.uri, exec_properties[MAX_PER_CLASS_KEY])
        for split, count in zip(SPLITS, counts):
            banks.set_int_custom_property(f"{split}_glyphs", count)
        banks.set_string_custom_property(SOURCE_URI, examples.uri)


class GlyphBanksSpec(ComponentSpec):
    PARAMETERS = {MAX_PER_CLASS_KEY: ExecutionParameter(type=int)}
    INPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {BANKS_KEY: ChannelParameter(type=GlyphBanks)}


class GlyphBanksComponent(base_component.BaseComponent):
    """EMNIST character Examples (train and eval splits) -> GlyphBanks."""

    SPEC_CLASS = GlyphBanksSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples, max_per_class: int = MAX_GLYPHS_PER_CLASS):
        super().__init__(
            GlyphBanksSpec(
                examples=examples,
                max_per_class=max_per_class,
                glyph_banks=Channel(type=GlyphBanks),
            )
        )
        self.with_id(COMPONENT_ID)


def with_bank_paths(input_dict: dict, exec_properties: dict) -> tuple:
    """(input_dict without the banks, exec_properties whose custom_config names the banks)."""
    banks = artifact_utils.get_single_instance(input_dict[BANKS_KEY])
    config = json_utils.loads(exec_properties.get(CUSTOM_CONFIG) or "null") or {}
    config[BANKS_KEY] = bank_paths(banks.uri)
    return (
        {key: value for key, value in input_dict.items() if key != BANKS_KEY},
        {**exec_properties, CUSTOM_CONFIG: json_utils.dumps(config)},
    )


class GivesBankPaths:
    """Executor mixin: runs the TFX executor it precedes with the banks in custom_config."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        inputs, properties = with_bank_paths(input_dict, exec_properties)
        super().Do(inputs, output_dict, properties)  # type: ignore[misc]


@functools.cache
def _spec_with_banks(spec_class: type[ComponentSpec]) -> type[ComponentSpec]:
    """`spec_class` with one more input, the GlyphBanks artifact."""
    inputs = {**spec_class.INPUTS, BANKS_KEY: ChannelParameter(type=GlyphBanks)}
    return type(spec_class.__name__, (spec_class,), {"INPUTS": inputs})


class TakesGlyphBanks:
    """Component mixin: the TFX component it precedes, with the `glyph_banks` input added to the
    spec that component builds (so the compilers see it like any declared input)."""

    spec: ComponentSpec

    def __init__(self, glyph_banks, **kwargs):
        super().__init__(**kwargs)
        spec = self.spec
        self.spec = _spec_with_banks(type(spec))(
            **spec.exec_properties, **spec.inputs, **spec.outputs, glyph_banks=glyph_banks
        )


class TransformExecutor(GivesBankPaths, transform_executor.Executor):
    pass


class TrainerExecutor(GivesBankPaths, trainer_executor.GenericExecutor):
    pass


class Transform(TakesGlyphBanks, transform_component.Transform):
    """TFX's Transform, given the glyph banks (custom_config["glyph_banks"])."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(TransformExecutor)


class Trainer(TakesGlyphBanks, trainer_component.Trainer):
    """TFX's Trainer, given the glyph banks (custom_config["glyph_banks"])."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrainerExecutor)


class TunerExecutor(GivesBankPaths, TrialsExecutor):
    pass


class Tuner(TakesGlyphBanks, TrackedTuner):
    """Our Tuner (trainer.tuner), given the glyph banks: its trials redraw lines too."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TunerExecutor)
