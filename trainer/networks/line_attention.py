"""Encoder-decoder with attention (the seed's TODO): a CNN reads the line into a sequence of
column features; a Transformer decoder writes the text one character at a time, attending to it.

Training uses teacher forcing: the decoder sees the true previous characters (`decoder_tokens`,
the label shifted right behind a start token). Reading is the LineModelAttention kind's greedy
decoding (trainer/models/line_attention.py).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a network is built, so the config reads
    import keras  # the builders' signatures without loading TensorFlow


def line_attention(
    input_shape: tuple,
    num_classes: int,
    output_length: int,
    model_dim: int = 128,
    num_heads: int = 4,
    num_layers: int = 2,
    dropout: float = 0.1,
) -> "keras.Model":
    """Inputs `image` and `decoder_tokens` [batch, output_length] (the start token is
    `num_classes`); output: probabilities [batch, output_length, num_classes]."""
    import keras

    from trainer.networks.position_embedding import PositionEmbedding

    image = keras.Input(shape=input_shape, name="image")
    x = image
    for filters in (32, 64, model_dim):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    # [B, 3, W/8, D] -> one feature vector per column group
    x = keras.layers.Permute((2, 1, 3))(x)
    x = keras.layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)
    x = keras.layers.Dense(model_dim)(x)
    encoder = keras.Model(image, PositionEmbedding(name="memory_positions")(x), name="encoder")

    tokens = keras.Input(shape=(output_length,), dtype="int32", name="decoder_tokens")
    memory = keras.Input(shape=encoder.output_shape[1:], name="memory")
    y = keras.layers.Embedding(num_classes + 1, model_dim)(tokens)
    y = PositionEmbedding(name="token_positions")(y)
    for _ in range(num_layers):
        y = _decoder_block(y, memory, model_dim, num_heads, dropout)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(y)
    decoder = keras.Model([tokens, memory], outputs, name="decoder")
    return keras.Model([image, tokens], decoder([tokens, encoder(image)]), name="line_attention")


def _decoder_block(y, memory, model_dim: int, num_heads: int, dropout: float):
    import keras

    attend = keras.layers.MultiHeadAttention(num_heads, model_dim // num_heads, dropout=dropout)
    y = keras.layers.LayerNormalization()(y + attend(y, y, use_causal_mask=True))
    cross = keras.layers.MultiHeadAttention(num_heads, model_dim // num_heads, dropout=dropout)
    y = keras.layers.LayerNormalization()(y + cross(y, memory))
    feed_forward = keras.Sequential(
        [
            keras.layers.Dense(model_dim * 2, activation="relu"),
            keras.layers.Dense(model_dim),
            keras.layers.Dropout(dropout),
        ]
    )
    return keras.layers.LayerNormalization()(y + feed_forward(y))
