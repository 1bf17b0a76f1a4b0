"""LineDetectorModel (line_detector_fcn): labels each pixel of a page as background, odd line or
even line (common.pages), the FSDL labs' line detector.

- Reads PAGES: Transform's page IMAGE_KEY float32 [S, S, 1] (ink 1, background 0) and its mask
  as the label, int64 [S, S].
- Loss: per-pixel sparse categorical cross-entropy (Keras averages it over every pixel).
- Metrics: `pixel_accuracy`, `mean_iou` and `iou_<class>` per class of common.pages.PAGE_CLASSES,
  each pooled over the pixels of all pages of an epoch, and named as the Evaluator's TFMA
  metrics are (evaluation.tfma_metrics), so the Trainer keeps the epoch of the best `val_mean_iou`
  that the Evaluator then gates on.
- Export: `serving_default` takes `image_bytes` (pages of any size, header limits as for every
  model), normalizes them as the page Transform does and stretches them to S x S, and returns
  LINE_PROBABILITIES float32 [N, S, S, 3]; `from_examples` reads Transform's output, for TFMA.
"""

from common.pages import LINE_PROBABILITIES, PAGE_CLASSES
from trainer.models.base import PAGES, ModelKind


class LineDetectorModel(ModelKind):
    name = "LineDetectorModel"
    reads = PAGES
    networks = ("line_detector_fcn",)

    def metrics(self) -> list:
        import keras

        classes = len(PAGE_CLASSES)
        return [
            keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
            keras.metrics.MeanIoU(classes, name="mean_iou", sparse_y_pred=False),
            *(
                keras.metrics.IoU(classes, [index], name=f"iou_{name}", sparse_y_pred=False)
                for index, name in enumerate(PAGE_CLASSES)
            ),
        ]

    def export(self, model, config, tf_transform_output, path: str) -> None:
        from data.features import IMAGE_KEY

        self.export_for_images(
            model, config, tf_transform_output.transformed_feature_spec()[IMAGE_KEY], path
        )

    def export_for_images(self, model, config, image_spec, path: str) -> None:
        """Exports labelling pages shaped like `image_spec` (a tf.io.FixedLenFeature, [S, S, 1])."""
        from trainer.export import export_image_model
        from transform.page_preprocessing import decode_pages

        size = image_spec.shape[0]
        export_image_model(
            lambda images: {LINE_PROBABILITIES: model(images, training=False)},
            lambda image_bytes: decode_pages(image_bytes, size),
            model,
            image_spec,
            path,
        )
