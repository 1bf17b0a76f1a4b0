"""What a model kind is: the one place that says how it trains and how its outputs are read.

A kind names the networks it can drive, the dataset type it reads (characters or lines), its
`model_args` with their defaults, its loss, what the Keras model takes in training, and how the
exported SavedModel turns network outputs into predictions. The config, `run_fn` and the export
look a kind up once in `trainer.models.MODEL_KINDS` instead of comparing names.

Kinds are plain objects importable without TensorFlow (the config validates against them before
anything heavy loads); the methods that need TensorFlow or Keras import them when called.
"""

from data.features import IMAGE_KEY

CHARACTERS = "characters"  # a dataset of single-character images, labels are class indices
LINES = "lines"  # a dataset of line images, labels are character indices padded to max_length
PAGES = "pages"  # a dataset of page images, labels are per-pixel classes of common.pages


class ModelKind:
    name: str
    reads: str  # CHARACTERS or LINES: the dataset type it trains on
    networks: tuple  # network names it can drive; the first is the default
    model_args: dict = {}  # allowed model_args and their defaults

    def validate(self, config) -> None:
        """Raises ValueError naming the key when `config` is valid piece by piece but not for
        this kind (checked before TensorFlow loads)."""

    def loss(self):
        return "sparse_categorical_crossentropy"

    def metrics(self) -> list:
        return []

    def build(self, config, image_shape: tuple, num_classes: int):
        """The configured network, compiled with this kind's loss."""
        import keras

        from trainer.networks import NETWORKS

        length = self.output_length(config)
        lengths = () if length is None else (length,)
        model = NETWORKS[config.network](image_shape, num_classes, *lengths, **config.network_args)
        model.compile(
            optimizer=keras.optimizers.Adam(config.train_args["learning_rate"]),
            loss=self.loss(),
            metrics=self.metrics(),
        )
        return model

    def output_length(self, config):
        """The most characters the network writes (line networks take it as their third
        argument), or None for one class per image."""
        return None

    def training_inputs(self, features: dict, labels):
        """What the Keras model takes in training, from a batch of transformed features."""
        return features[IMAGE_KEY]

    def export(self, model, config, tf_transform_output, path: str) -> None:
        raise NotImplementedError

    def read(self, model, images, config) -> dict:
        """Kinds that read lines (LineModelKind): {"text", "confidence", "decoded"} read from
        normalized line images [B, H, W, 1]."""
        raise NotImplementedError

    def export_for_images(self, model, config, image_spec, path: str) -> None:
        """Kinds that read lines (LineModelKind): exports reading line images shaped like
        `image_spec` (a tf.io.FixedLenFeature)."""
        raise NotImplementedError


class LineModelKind(ModelKind):
    """A model that reads a line image into text; subclasses say how (`read`)."""

    reads = LINES

    def output_length(self, config) -> int:
        return config.dataset_args["max_length"]

    def export(self, model, config, tf_transform_output, path: str) -> None:
        self.export_for_images(
            model, config, tf_transform_output.transformed_feature_spec()[IMAGE_KEY], path
        )

    def export_for_images(self, model, config, image_spec, path: str) -> None:
        from trainer.datasets import DATASETS
        from trainer.export import export_line_model

        stretch = DATASETS[config.dataset].stretch_contrast
        export_line_model(
            lambda images: self.read(model, images, config),
            model,
            image_spec,
            path,
            stretch_contrast=stretch,
        )
