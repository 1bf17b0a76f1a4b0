"""LineModel (line_cnn_all_conv): one softmax per character position, padding after the text."""

from trainer.models.base import LineModelKind


class LineModel(LineModelKind):
    name = "LineModel"
    networks = ("line_cnn_all_conv",)

    def read(self, model, images, config) -> dict:
        from trainer.decoding import per_position_decode, read_result

        return read_result(*per_position_decode(model(images, training=False)))
