"""LineModelCtc (line_lstm_ctc): per-window logits trained with CTC (blank = PAD_INDEX) and read
by greedy or beam-search CTC decoding (`model_args.decoding`, `model_args.beam_width`)."""

from trainer.models.base import LineModelKind

CTC_STRATEGIES = ("greedy", "beam_search")


class LineModelCtc(LineModelKind):
    name = "LineModelCtc"
    networks = ("line_lstm_ctc", "line_crnn")
    model_args = {"decoding": "greedy", "beam_width": 10}

    def validate(self, config) -> None:
        if config.model_args["decoding"] not in CTC_STRATEGIES:
            raise ValueError(f"model_args.decoding must be one of {list(CTC_STRATEGIES)}")

    def loss(self):
        from trainer.decoding import ctc_loss

        return ctc_loss

    def read(self, model, images, config) -> dict:
        import keras
        import tensorflow as tf

        from trainer.decoding import ctc_character_confidences, ctc_decode, read_result

        probabilities = keras.ops.softmax(model(images, training=False))
        decoding = config.model_args["decoding"]
        decoded, confidence = ctc_decode(probabilities, decoding, config.model_args["beam_width"])
        # Characters of a beam-search reading need not lie on the greedy path: no per-character
        # confidence for them (-1, as for padding).
        characters = (
            ctc_character_confidences(probabilities)
            if decoding == "greedy"
            else -tf.ones_like(decoded, tf.float32)
        )
        return read_result(decoded, confidence, characters)
