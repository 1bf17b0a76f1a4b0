"""LineModelAttention (line_attention): a CNN encoder and a Transformer decoder that writes the
text one character at a time. Trained with teacher forcing (the decoder sees the true previous
characters), read greedily with the image encoded once."""

from data.vocabulary import NUM_LINE_CLASSES
from trainer.models.base import LineModelKind

START_TOKEN = NUM_LINE_CLASSES  # the decoder's first input, one past the output classes


class LineModelAttention(LineModelKind):
    name = "LineModelAttention"
    networks = ("line_attention",)

    def training_inputs(self, features: dict, labels):
        from data.features import IMAGE_KEY

        return {"image": features[IMAGE_KEY], "decoder_tokens": decoder_inputs(labels)}

    def read(self, model, images, config) -> dict:
        from trainer.decoding import per_position_decode, read_result

        probabilities = greedy_decode(model, images, config.dataset_args["max_length"])
        return read_result(*per_position_decode(probabilities))


def decoder_inputs(labels):
    """Teacher forcing input: the labels shifted right behind the start token."""
    import tensorflow as tf

    start = tf.fill([tf.shape(labels)[0], 1], tf.cast(START_TOKEN, labels.dtype))
    return tf.cast(tf.concat([start, labels[:, :-1]], axis=1), tf.int32)


def greedy_decode(model, images, output_length: int):
    """Probabilities [batch, output_length, classes] of reading `images` one character at a time,
    each step feeding back the most likely previous characters. The image is encoded once."""
    import tensorflow as tf

    memory = model.get_layer("encoder")(images, training=False)
    decoder = model.get_layer("decoder")
    tokens = tf.fill([tf.shape(images)[0], output_length], START_TOKEN)
    for step in range(output_length):
        probabilities = decoder([tokens, memory], training=False)
        if step + 1 < output_length:
            chosen = tf.argmax(probabilities[:, step], axis=-1, output_type=tf.int32)
            position = tf.one_hot(step + 1, output_length, dtype=tf.int32)
            tokens = tokens * (1 - position) + chosen[:, None] * position
    return probabilities
