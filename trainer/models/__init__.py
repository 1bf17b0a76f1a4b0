"""The registry of model kinds: the config's `model` name -> the object that says what it is.

Adding a model kind is one module (a `ModelKind` subclass, see base.py) and one line here.
"""

from trainer.models.base import ModelKind
from trainer.models.character import CharacterModel
from trainer.models.line_attention import LineModelAttention
from trainer.models.line_ctc import LineModelCtc
from trainer.models.line_detector import LineDetectorModel
from trainer.models.line_per_position import LineModel

MODEL_KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (
        CharacterModel(),
        LineModel(),
        LineModelCtc(),
        LineModelAttention(),
        LineDetectorModel(),
    )
}


def build_model(config, image_shape: tuple):
    """The configured network, compiled by its model kind for its dataset's classes."""
    from trainer.datasets import DATASETS  # datasets import kinds' base: no cycle at import

    return MODEL_KINDS[config.model].build(
        config, image_shape, DATASETS[config.dataset].num_classes
    )
