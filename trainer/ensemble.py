"""An ensemble of two exported line models, exported as one line model.

Two models that err on different lines can read better together than either alone. The
ensemble is one SavedModel holding both members, with the signatures and outputs of any line
model (`serving_default` on encoded images with the same header limits, `from_examples` for
TFMA, the same warm-up request), so TF Serving, the clients, the app and the line EvalConfig
take it unchanged. It combines its members one of two ways, chosen when it is built:

- **average** (both members are CTC models whose posteriors align: the same number of time steps
  and classes for the same image, checked on the warm-up image, not assumed): the mean of the
  two per-step posteriors, decoded once by greedy CTC (trainer/decoding.py), with confidences
  computed on the mean as for any CTC model. Averaging lets each step be decided by the member
  that is surer there, which a per-line choice cannot do.
- **pick** (anything else: a per-position or attention member, CTC members of other strides,
  models exported before CTC models carried their posteriors): per line, the reading of the
  member with the higher line confidence (trainer/decoding.py: the weakest posterior on the read
  path), its characters' confidences with it.

Members must read lines of the same size, since the ensemble is evaluated on one set of
examples. `assets.extra/ensemble.json` records the members and the combination.
"""

import dataclasses
import json
import os

import tensorflow as tf

from common.push_layout import newest_version_dir
from common.signatures import (
    CHARACTER_CONFIDENCES,
    EXAMPLES_SIGNATURE,
    IMAGE_BYTES_INPUT,
    NO_CLASS,
    SERVING_SIGNATURE,
)
from trainer.decoding import ctc_character_confidences, ctc_decode, read_result
from trainer.export import (
    CTC_POSTERIORS,
    CTC_POSTERIORS_FROM_EXAMPLES,
    WARMUP_FILE,
    _write,
    write_warmup_requests,
)
from transform.preprocessing import DEFAULT_MAX_BATCH, DEFAULT_MAX_PIXELS, check_image_headers

AVERAGE = "average"
PICK = "pick"
AUTO = "auto"  # average when the members allow it, else pick
COMBINATIONS = (AUTO, AVERAGE, PICK)
ENSEMBLE_FILE = os.path.join("assets.extra", "ensemble.json")
LINE_OUTPUTS = frozenset({"text", "confidence", "decoded", CHARACTER_CONFIDENCES})
_SAVED_MODEL = "saved_model.pb"
_TRAINER_LAYOUT = "Format-Serving"  # where a Trainer's Model artifact holds its SavedModel


class EnsembleError(ValueError):
    """A member is not an exported line model, or the two cannot be evaluated together."""


@dataclasses.dataclass
class Member:
    path: str  # the SavedModel directory
    model: object  # the loaded SavedModel
    warmup_image: bytes  # the PNG of its warm-up request: an image of its geometry
    geometry: tuple  # (height, width) of the lines it reads


def model_dir(path: str) -> str:
    """The SavedModel directory of `path`: a SavedModel, a pushed model's directory (its newest
    version) or a Trainer's Model artifact. Raises EnsembleError naming `path` otherwise."""
    path = str(path)
    candidates = [path, newest_version_dir(path), os.path.join(path, _TRAINER_LAYOUT)]
    for candidate in candidates:
        if candidate and tf.io.gfile.exists(os.path.join(candidate, _SAVED_MODEL)):
            return candidate
    raise EnsembleError(
        f"{path} is not a line model: no {_SAVED_MODEL} in it, in its newest version or in "
        f"{_TRAINER_LAYOUT}/"
    )


def load_member(path: str) -> Member:
    """Loads the line model at `path` (see model_dir). Raises EnsembleError naming it when it is
    not a SavedModel, not a line model, or has no warm-up request."""
    directory = model_dir(path)
    try:
        model = tf.saved_model.load(directory)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise EnsembleError(f"{directory} is not a readable SavedModel: {e}") from None
    signatures = getattr(model, "signatures", {})
    if SERVING_SIGNATURE not in signatures or EXAMPLES_SIGNATURE not in signatures:
        raise EnsembleError(
            f"{directory} is not a line model: it has signatures {sorted(signatures)}, not "
            f"{SERVING_SIGNATURE} and {EXAMPLES_SIGNATURE}"
        )
    outputs = set(signatures[SERVING_SIGNATURE].structured_outputs)
    if outputs != LINE_OUTPUTS:
        raise EnsembleError(
            f"{directory} is not a line model: it returns {sorted(outputs)}, a line model "
            f"returns {sorted(LINE_OUTPUTS)}"
        )
    image = _warmup_image(directory)
    height, width = tf.io.decode_image(image, expand_animations=False).shape[:2]
    return Member(directory, model, image, (int(height), int(width)))


def _warmup_image(directory: str) -> bytes:
    """The image of the model's warm-up request (written by trainer.export with every model)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(directory, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        raise EnsembleError(f"{directory} has no {WARMUP_FILE}: export it with this project")
    record = next(iter(tf.data.TFRecordDataset(path))).numpy()
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    return request.inputs[IMAGE_BYTES_INPUT].string_val[0]


def choose_combination(first: Member, second: Member, wanted: str = AUTO) -> tuple[str, str]:
    """(AVERAGE or PICK, why), from the members themselves and `wanted` (one of COMBINATIONS).
    Raises EnsembleError when AVERAGE is wanted and the members do not allow it."""
    if wanted not in COMBINATIONS:
        raise EnsembleError(f"combination {wanted!r}: expected one of {list(COMBINATIONS)}")
    if wanted == PICK:
        return PICK, "asked for"
    combination, reason = _alignment(first, second)
    if wanted == AVERAGE and combination != AVERAGE:
        raise EnsembleError(f"cannot average {first.path} and {second.path}: {reason}")
    return combination, reason


def _alignment(first: Member, second: Member) -> tuple[str, str]:
    missing = [m.path for m in (first, second) if not hasattr(m.model, CTC_POSTERIORS)]
    if missing:
        return PICK, f"no CTC posteriors in {', '.join(missing)}"
    probe = tf.constant([first.warmup_image])
    shapes = [tuple(getattr(m.model, CTC_POSTERIORS)(probe).shape[1:]) for m in (first, second)]
    if shapes[0] != shapes[1]:
        return PICK, f"CTC posteriors do not align: [steps, classes] {shapes[0]} vs {shapes[1]}"
    return AVERAGE, f"CTC posteriors align: [steps, classes] {shapes[0]}"


def average_reading(first: tf.Tensor, second: tf.Tensor) -> dict:
    """A line model's outputs from two members' aligned CTC posteriors [B, T, classes]."""
    probabilities = (first + second) / 2
    decoded, confidence = ctc_decode(probabilities)
    return read_result(decoded, confidence, ctc_character_confidences(probabilities))


def pick_reading(first: dict, second: dict) -> dict:
    """Per line, the outputs of the member with the higher confidence (the first on ties);
    `decoded` and character confidences padded with NO_CLASS to the longer member's length."""
    take_first = first["confidence"] >= second["confidence"]
    length = tf.maximum(tf.shape(first["decoded"])[1], tf.shape(second["decoded"])[1])

    def choose(key, fill):
        padded = [
            tf.pad(r[key], [[0, 0], [0, length - tf.shape(r[key])[1]]], constant_values=fill)
            for r in (first, second)
        ]
        return tf.where(take_first[:, None], *padded)

    return {
        "text": tf.where(take_first, first["text"], second["text"]),
        "confidence": tf.where(take_first, first["confidence"], second["confidence"]),
        "decoded": choose("decoded", tf.constant(NO_CLASS, tf.int64)),
        CHARACTER_CONFIDENCES: choose(CHARACTER_CONFIDENCES, float(NO_CLASS)),
    }


def build_ensemble(
    first_path: str,
    second_path: str,
    out: str,
    combination: str = AUTO,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> dict:
    """Exports the ensemble of the line models at `first_path` and `second_path` (see model_dir)
    to `out`, combined as `combination` asks (see choose_combination); returns what
    `assets.extra/ensemble.json` records (members, combination, why)."""
    first, second = load_member(first_path), load_member(second_path)
    if first.geometry != second.geometry:
        raise EnsembleError(
            f"{first.path} reads lines of {first.geometry[0]}x{first.geometry[1]} pixels, "
            f"{second.path} of {second.geometry[0]}x{second.geometry[1]}: an ensemble is "
            "evaluated on one set of examples, so its members must read the same size"
        )
    combination, reason = choose_combination(first, second, combination)
    members = (first.model, second.model)

    def combined(function_name: str, signature_name: str):
        if combination == AVERAGE:
            return lambda inputs: average_reading(
                *(getattr(m, function_name)(inputs) for m in members)
            )
        return lambda inputs: pick_reading(*(getattr(m, signature_name)(inputs) for m in members))

    serve_images = combined(CTC_POSTERIORS, SERVING_SIGNATURE)
    functions = {}
    if combination == AVERAGE:  # an averaging ensemble can itself be averaged with another
        functions = {
            name: lambda inputs, name=name: sum(getattr(m, name)(inputs) for m in members) / 2
            for name in (CTC_POSTERIORS, CTC_POSTERIORS_FROM_EXAMPLES)
        }
    _write(
        out,
        list(members),
        lambda image_bytes: serve_images(check_image_headers(image_bytes, max_pixels, max_batch)),
        combined(CTC_POSTERIORS_FROM_EXAMPLES, EXAMPLES_SIGNATURE),
        functions,
    )
    write_warmup_requests(out, first.warmup_image)
    record = {"members": [first.path, second.path], "combination": combination, "reason": reason}
    with tf.io.gfile.GFile(os.path.join(out, ENSEMBLE_FILE), "w") as f:
        f.write(json.dumps(record, indent=2))
    return record
