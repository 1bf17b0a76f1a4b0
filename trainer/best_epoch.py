"""Keeps the best epoch, not the last: the model the Evaluator judges and the Pusher pushes is the
one that scored best on the validation split by the metric the Evaluator gates on (validation
accuracy for characters, CER for lines) or by `train_args.keep_best`.

Keras computes no CER, so for lines `ValidationCer` reads the eval split after every epoch the
way the exported model will (the model kind's decoding) and adds `val_cer` to the epoch's logs
and history.
"""

import keras

from data.features import IMAGE_KEY
from evaluation.text_metrics import character_error_rate, labels_to_text

LAST = "last"  # train_args.keep_best: keep the last epoch's weights


def higher_is_better(metric: str) -> bool:
    """Accuracies and IoUs grow as a model improves; losses and error rates shrink."""
    return "accuracy" in metric or "iou" in metric


class ValidationCer(keras.callbacks.Callback):
    def __init__(self, read, dataset):
        """`read(images)` -> {"text", ...}; `dataset` yields (features, labels) batches."""
        super().__init__()
        self.read, self.dataset = read, dataset

    def on_epoch_end(self, epoch, logs=None):
        truths, reads = [], []
        for features, labels in self.dataset:
            reads += [text.decode() for text in self.read(features[IMAGE_KEY])["text"].numpy()]
            truths += [labels_to_text(row) for row in labels.numpy()]
        logs["val_cer"] = character_error_rate(truths, reads)


class KeepBest(keras.callbacks.Callback):
    """Remembers the weights of the best epoch by `monitor` and restores them when training ends."""

    def __init__(self, monitor: str):
        super().__init__()
        self.monitor = monitor
        self.higher_is_better = higher_is_better(monitor)
        self.best = self.best_epoch = self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = logs[self.monitor]
        better = self.best is None or (
            value > self.best if self.higher_is_better else value < self.best
        )
        if better:
            self.best, self.best_epoch, self.weights = value, epoch + 1, self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.weights)
        print(self.summary())

    def summary(self) -> str:
        return f"kept epoch {self.best_epoch}: best {self.monitor} {self.best:.4f}"
