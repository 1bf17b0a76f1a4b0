"""Training line models on Transform's synthesized lines, and what each model kind means.

- LineModel (line_cnn_all_conv): one softmax per character position, padding after the text.
- LineModelCtc (line_lstm_ctc): per-window logits read with CTC (blank = PAD_INDEX).
- LineModelAttention (line_attention): a decoder writes the text, trained with teacher forcing.
"""

import keras
import tensorflow as tf

from data.features import IMAGE_KEY
from data.vocabulary import NUM_LINE_CLASSES, PAD_INDEX
from trainer.networks import NETWORKS
from trainer.networks.line_attention import decoder_inputs
from training.config import ExperimentConfig

START_TOKEN = NUM_LINE_CLASSES  # the attention decoder's first input


def ctc_loss(labels, logits):
    """Mean CTC loss of labels [B, L] padded with PAD_INDEX given logits [B, T, classes]."""
    labels = tf.cast(labels, tf.int32)
    label_length = tf.reduce_sum(tf.cast(labels != PAD_INDEX, tf.int32), axis=1)
    steps = tf.shape(logits)[1]
    logit_length = tf.fill(tf.shape(labels)[:1], steps)
    return keras.ops.mean(
        keras.ops.ctc_loss(labels, logits, label_length, logit_length, mask_index=PAD_INDEX)
    )


def build_line_model(config: ExperimentConfig, image_shape: tuple) -> keras.Model:
    """The configured line network, compiled with its model's loss."""
    model = NETWORKS[config.network](
        image_shape,
        NUM_LINE_CLASSES,
        config.dataset_args["max_length"],
        **config.network_args,
    )
    loss = ctc_loss if config.model == "LineModelCtc" else "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(config.train_args["learning_rate"]), loss=loss)
    return model


def model_inputs(config: ExperimentConfig, features: dict, labels: tf.Tensor):
    """What the Keras model takes during training, from a batch of transformed features."""
    if config.model == "LineModelAttention":
        return {"image": features[IMAGE_KEY], "decoder_tokens": decoder_inputs(labels, START_TOKEN)}
    return features[IMAGE_KEY]
