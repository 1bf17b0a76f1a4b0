"""Line models' CTC loss, and turning their outputs into class indices, a confidence and text
inside the serving graph.

Everything here is TensorFlow ops on [batch, steps, NUM_LINE_CLASSES] tensors of unknown batch
size and length, so it can sit in an exported tf.function. Outputs are dense (indices right-padded
with -1), because a serving signature cannot return a SparseTensor.

The confidence of a decoded line is the probability the model gives that exact output: a line is
only right if every character is, so a single doubtful character should pull it down (a per-step
average would hide it among the many confident steps).
"""

import keras
import tensorflow as tf

from common.signatures import NO_CLASS
from data.vocabulary import LINE_CHARACTERS, PAD_INDEX
from trainer.models.line_ctc import CTC_STRATEGIES

# log(0) would be -inf, which the beam search turns into NaN scores.
_MIN_PROBABILITY = 1e-12


def _log(probabilities: tf.Tensor) -> tf.Tensor:
    return tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), _MIN_PROBABILITY))


def ctc_decode(
    probabilities: tf.Tensor, strategy: str = "greedy", beam_width: int = 10
) -> tuple[tf.Tensor, tf.Tensor]:
    """CTC probabilities [B, T, NUM_LINE_CLASSES] (blank = PAD_INDEX) -> (indices int64 [B, T], confidence [B]).

    Pass softmax probabilities (apply keras.ops.softmax to a network's logits first). Every line
    is read over all T steps. Confidence: greedy, the probability of its single best alignment
    (the product of each step's top probability); beam search, the probability of the decoded
    text summed over the alignments its beam kept (so it can prefer a text that no single
    alignment favours). Both are probabilities in [0, 1].
    """
    if strategy not in CTC_STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: expected one of {CTC_STRATEGIES}")
    # Log-probabilities make both scores log-probabilities: greedy sums its inputs as given, the
    # beam search log-softmaxes them first, which leaves log-probabilities as they are.
    log_probabilities = _log(probabilities)
    shape = tf.shape(log_probabilities)
    decoded, scores = keras.ops.ctc_decode(
        log_probabilities,
        sequence_lengths=tf.fill(shape[:1], shape[1]),
        strategy=strategy,
        beam_width=beam_width,
        # Keras' default blank is class 0, which is the character "0" here.
        mask_index=PAD_INDEX,
    )
    # Greedy scores are minus the summed top log-probabilities; beam scores are log-probabilities.
    log_confidence = -scores[:, 0] if strategy == "greedy" else scores[:, 0]
    return tf.cast(decoded[0], tf.int64), tf.exp(log_confidence)


def per_position_decode(probabilities: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-position probabilities [B, L, 64] -> (indices int64 [B, L], confidence [B]).

    The text ends at the first position whose top class is PAD_INDEX; that position and all
    after it become -1, whatever was predicted there. Confidence is the product of the top
    probabilities up to and including that first padding (the probability of this text and of
    its ending there); positions after it do not count.
    """
    top_class = tf.argmax(probabilities, axis=-1)
    is_pad = tf.cast(tf.equal(top_class, PAD_INDEX), tf.int32)
    after_end = tf.cumsum(is_pad, axis=1) > 0
    counted = tf.cumsum(is_pad, axis=1, exclusive=True) == 0
    log_top = _log(tf.reduce_max(probabilities, axis=-1))
    confidence = tf.exp(tf.reduce_sum(tf.where(counted, log_top, 0.0), axis=1))
    return tf.where(after_end, tf.constant(NO_CLASS, tf.int64), top_class), confidence


def indices_to_text(indices: tf.Tensor) -> tf.Tensor:
    """Class indices [B, L] -> tf.string [B]. Anything that is not a character (-1, PAD_INDEX) is
    skipped wherever it is."""
    indices = tf.cast(indices, tf.int64)
    is_character = (indices >= 0) & (indices < PAD_INDEX)
    characters = tf.gather(
        tf.constant(list(LINE_CHARACTERS)), tf.where(is_character, indices, 0)
    )
    return tf.strings.reduce_join(tf.ragged.boolean_mask(characters, is_character), axis=-1)


def read_result(decoded: tf.Tensor, confidence: tf.Tensor) -> dict:
    """A line model's serving outputs from its decoded indices [B, L] and confidences [B]."""
    return {"text": indices_to_text(decoded), "confidence": confidence, "decoded": decoded}


def ctc_loss(labels, logits):
    """Mean CTC loss of labels [B, L] padded with PAD_INDEX given logits [B, T, classes]."""
    labels = tf.cast(labels, tf.int32)
    label_length = tf.reduce_sum(tf.cast(labels != PAD_INDEX, tf.int32), axis=1)
    steps = tf.shape(logits)[1]
    logit_length = tf.fill(tf.shape(labels)[:1], steps)
    return keras.ops.mean(
        keras.ops.ctc_loss(labels, logits, label_length, logit_length, mask_index=PAD_INDEX)
    )
