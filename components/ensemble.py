"""The ensemble pipeline's own steps (pipeline/ensemble_pipeline.py).

- **LineModelSource**: a line model given by a path (a pushed model's directory, meaning its
  newest, so latest blessed, version; a version directory; or a Trainer's Model artifact) as a
  Model artifact laid out as a Trainer's (`Format-Serving/`), where the Evaluator looks. Its
  `seen` parameter (the directory and SavedModel fingerprint found when the pipeline was built)
  keys the cache, so a newer push is not answered from the cache.
- **Ensemble**: one line model reading with two (trainer/ensemble.py), a Model artifact like a
  Trainer's, which the Evaluator and the Pusher take as any line model. It records the
  combination chosen (`combination`: average or pick) and why (`combination_reason`).
"""

import hashlib
import os

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

COMBINATION = "combination"
COMBINATION_REASON = "combination_reason"
SOURCE = "source"  # LineModelSource's custom property: the SavedModel directory it copied


def resolve_source(path: str) -> str:
    """`<SavedModel directory>@<fingerprint digest>` of the line model at `path`: what
    LineModelSource will copy, for its cache key. Raises trainer.ensemble.EnsembleError naming
    `path` when it holds no SavedModel."""
    import tensorflow as tf

    from components.pusher import FINGERPRINT_FILE
    from trainer.ensemble import model_dir

    directory = model_dir(path)
    fingerprint = os.path.join(directory, FINGERPRINT_FILE)
    content = (
        tf.io.gfile.GFile(fingerprint, "rb").read() if tf.io.gfile.exists(fingerprint) else b""
    )
    return f"{directory}@{hashlib.sha256(content).hexdigest()[:16]}"


@component
def LineModelSource(
    source: Parameter[str],
    seen: Parameter[str],
    model: OutputArtifact[standard_artifacts.Model],
) -> None:
    """Copies the SavedModel at `source` (see trainer.ensemble.model_dir) into `model`."""
    from trainer.ensemble import model_dir

    del seen  # only keys the cache
    directory = model_dir(source)
    io_utils.copy_dir(directory, path_utils.serving_model_dir(model.uri))
    model.set_string_custom_property(SOURCE, directory)


def write_ensemble(first, second, model, combination: str = "auto") -> dict:
    """Exports the ensemble of Model artifacts `first` and `second` into Model artifact `model`;
    returns the record of trainer.ensemble.build_ensemble."""
    from trainer.ensemble import build_ensemble

    out = path_utils.serving_model_dir(model.uri)
    record = build_ensemble(first.uri, second.uri, out, combination)
    model.set_string_custom_property(COMBINATION, record["combination"])
    model.set_string_custom_property(COMBINATION_REASON, record["reason"])
    return record


@component
def Ensemble(
    model_a: InputArtifact[standard_artifacts.Model],
    model_b: InputArtifact[standard_artifacts.Model],
    model: OutputArtifact[standard_artifacts.Model],
    combination: Parameter[str] = "auto",
) -> None:
    """One line model reading with both members (see trainer/ensemble.py): `combination` is
    auto (average when the members allow it, else pick), average or pick."""
    write_ensemble(model_a, model_b, model, combination)
