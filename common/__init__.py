"""Names every layer agrees on (signatures, inputs, model names, the push layout).

Nothing here imports TensorFlow, Keras or TFX at module level, so the lightest client can use it.
"""
