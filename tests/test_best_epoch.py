"""The Trainer keeps the best epoch by the gated validation metric, not the last."""

import keras
import numpy as np
import tensorflow as tf

from data.vocabulary import LINE_CHARACTERS, PAD_INDEX
from trainer.best_epoch import KeepBest, ValidationCer


def tiny_model() -> keras.Model:
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def test_weights_of_the_best_epoch_are_restored_when_the_last_is_worse(capsys):
    model = tiny_model()
    keep = KeepBest("val_cer")
    keep.set_model(model)
    snapshots = []
    for epoch, cer in enumerate([0.5, 0.2, 0.7]):  # the last epoch is the worst
        model.set_weights([w + epoch + 1 for w in model.get_weights()])
        snapshots.append(model.get_weights())
        keep.on_epoch_end(epoch, {"val_cer": cer})
    keep.on_train_end()
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), snapshots[1]))
    assert "kept epoch 2: best val_cer 0.2000" in capsys.readouterr().out


def test_accuracy_is_kept_at_its_highest():
    model = tiny_model()
    keep = KeepBest("val_accuracy")
    keep.set_model(model)
    for epoch, accuracy in enumerate([0.8, 0.85, 0.84]):
        keep.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert keep.best_epoch == 2 and keep.best == 0.85


def test_validation_cer_reads_the_eval_lines_as_the_model_kind_does():
    def labels(text):
        return [LINE_CHARACTERS.index(c) for c in text] + [PAD_INDEX] * (4 - len(text))

    batch = (
        {"image": tf.zeros([2, 28, 112, 1])},
        tf.constant([labels("ab"), labels("cd")], tf.int64),
    )
    dataset = tf.data.Dataset.from_tensors(batch)

    def read(images):
        return {"text": tf.constant([b"ab", b"cx"])}  # one of four characters wrong

    logs = {}
    ValidationCer(read, dataset).on_epoch_end(0, logs)
    assert logs["val_cer"] == 0.25
