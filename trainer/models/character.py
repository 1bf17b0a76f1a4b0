"""CharacterModel: one softmax over a dataset's characters per image (mlp, lenet).

Exported with the Transform graph, so `from_examples` reads raw examples for TFMA and
`serving_default` normalizes encoded images exactly as training did.
"""

from trainer.models.base import CHARACTERS, ModelKind


class CharacterModel(ModelKind):
    name = "CharacterModel"
    reads = CHARACTERS
    networks = ("mlp", "lenet")

    def metrics(self) -> list:
        return ["accuracy"]

    def export(self, model, config, tf_transform_output, path: str) -> None:
        from trainer.datasets import DATASETS
        from trainer.export import export_classifier

        characters = list(DATASETS[config.dataset].charset)  # CharacterDataset: its characters
        export_classifier(model, tf_transform_output, characters, path)
