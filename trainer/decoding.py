"""Line models' CTC loss, and turning their outputs into class indices, a confidence and text
inside the serving graph.

Everything here is TensorFlow ops on [batch, steps, NUM_LINE_CLASSES] tensors of unknown batch
size and length, so it can sit in an exported tf.function. Outputs are dense (indices right-padded
with -1), because a serving signature cannot return a SparseTensor.

Confidence is what a user can threshold to reject doubtful reads, so it must mean the same for a
short and a long line. A line's confidence is the lowest posterior along the path that was read:
the smallest top probability over the CTC steps (every step, blanks included, since a dropped
character shows as a doubtful blank) or over the positions up to the end of the text. A line is
only right if every character is, and one doubtful step pulls it down, whatever the line's
length (the product of all steps, used before, fell with length: 0.001 for a near-perfect
34-character line). Each character also gets its own confidence (the peak posterior of its CTC
run, or its position's), padded with -1 like the indices, so a page can highlight doubtful ones.
"""

import keras
import tensorflow as tf

from common.signatures import CHARACTER_CONFIDENCES, NO_CLASS
from data.vocabulary import LINE_CHARACTERS, PAD_INDEX
from trainer.models.line_ctc import CTC_STRATEGIES

# log(0) would be -inf, which the beam search turns into NaN scores.
_MIN_PROBABILITY = 1e-12


def _log(probabilities: tf.Tensor) -> tf.Tensor:
    return tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), _MIN_PROBABILITY))


def ctc_decode(
    probabilities: tf.Tensor, strategy: str = "greedy", beam_width: int = 10
) -> tuple[tf.Tensor, tf.Tensor]:
    """CTC probabilities [B, T, NUM_LINE_CLASSES] (blank = PAD_INDEX) -> (indices int64 [B, T],
    confidence [B]).

    Pass softmax probabilities (apply keras.ops.softmax to a network's logits first). Every line
    is read over all T steps. Confidence: the lowest top probability over the steps (the
    greedy path's weakest step; beam search reports the same measure of the same posteriors).
    """
    if strategy not in CTC_STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: expected one of {CTC_STRATEGIES}")
    # Log-probabilities make both scores log-probabilities: greedy sums its inputs as given, the
    # beam search log-softmaxes them first, which leaves log-probabilities as they are.
    log_probabilities = _log(probabilities)
    shape = tf.shape(log_probabilities)
    decoded, _scores = keras.ops.ctc_decode(
        log_probabilities,
        sequence_lengths=tf.fill(shape[:1], shape[1]),
        strategy=strategy,
        beam_width=beam_width,
        # Keras' default blank is class 0, which is the character "0" here.
        mask_index=PAD_INDEX,
    )
    confidence = tf.reduce_min(tf.reduce_max(tf.cast(probabilities, tf.float32), axis=-1), axis=1)
    return tf.cast(decoded[0], tf.int64), confidence


def ctc_character_confidences(probabilities: tf.Tensor) -> tf.Tensor:
    """float32 [B, T]: for each character of the greedy reading, in order, the peak top
    probability of its run of steps; -1 after the last character."""
    probabilities = tf.cast(probabilities, tf.float32)
    top, best = tf.reduce_max(probabilities, axis=-1), tf.argmax(probabilities, axis=-1)
    batch, steps = tf.shape(best)[0], tf.shape(best)[1]
    previous = tf.concat([tf.fill([batch, 1], tf.constant(-1, tf.int64)), best[:, :-1]], axis=1)
    starts = tf.not_equal(best, previous)
    # Runs numbered across the batch, so one segment max serves every line.
    run = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1 + tf.range(batch)[:, None] * steps
    peaks = tf.math.unsorted_segment_max(
        tf.reshape(top, [-1]), tf.reshape(run, [-1]), batch * steps
    )
    emitted = starts & tf.not_equal(best, PAD_INDEX)
    values = tf.gather(peaks, tf.boolean_mask(run, emitted))
    counts = tf.reduce_sum(tf.cast(emitted, tf.int64), axis=1)
    ragged = tf.RaggedTensor.from_row_lengths(values, counts)
    return ragged.to_tensor(default_value=float(NO_CLASS), shape=tf.stack([batch, steps]))


def per_position_decode(probabilities: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-position probabilities [B, L, classes] -> (indices int64 [B, L], confidence [B],
    character confidences float32 [B, L]).

    The text ends at the first position whose top class is PAD_INDEX; that position and all
    after it become -1, whatever was predicted there. Confidence is the lowest top probability
    up to and including that first padding (the text and its ending there); positions after it
    do not count. Each character's confidence is its position's top probability.
    """
    top_class = tf.argmax(probabilities, axis=-1)
    is_pad = tf.cast(tf.equal(top_class, PAD_INDEX), tf.int32)
    after_end = tf.cumsum(is_pad, axis=1) > 0
    counted = tf.cumsum(is_pad, axis=1, exclusive=True) == 0
    top = tf.cast(tf.reduce_max(probabilities, axis=-1), tf.float32)
    confidence = tf.reduce_min(tf.where(counted, top, 1.0), axis=1)
    characters = tf.where(after_end, float(NO_CLASS), top)
    return tf.where(after_end, tf.constant(NO_CLASS, tf.int64), top_class), confidence, characters


def indices_to_text(indices: tf.Tensor) -> tf.Tensor:
    """Class indices [B, L] -> tf.string [B]. Anything that is not a character (-1, PAD_INDEX) is
    skipped wherever it is."""
    indices = tf.cast(indices, tf.int64)
    is_character = (indices >= 0) & (indices < PAD_INDEX)
    characters = tf.gather(tf.constant(list(LINE_CHARACTERS)), tf.where(is_character, indices, 0))
    return tf.strings.reduce_join(tf.ragged.boolean_mask(characters, is_character), axis=-1)


def read_result(decoded: tf.Tensor, confidence: tf.Tensor, characters: tf.Tensor) -> dict:
    """A line model's serving outputs from its decoded indices [B, L], line confidences [B] and
    character confidences [B, L]."""
    return {
        "text": indices_to_text(decoded),
        "confidence": confidence,
        "decoded": decoded,
        CHARACTER_CONFIDENCES: characters,
    }


def ctc_loss(labels, logits):
    """Mean CTC loss of labels [B, L] padded with PAD_INDEX given logits [B, T, classes]."""
    labels = tf.cast(labels, tf.int32)
    label_length = tf.reduce_sum(tf.cast(labels != PAD_INDEX, tf.int32), axis=1)
    steps = tf.shape(logits)[1]
    logit_length = tf.fill(tf.shape(labels)[:1], steps)
    return keras.ops.mean(
        keras.ops.ctc_loss(labels, logits, label_length, logit_length, mask_index=PAD_INDEX)
    )
