"""PNGs of line images, one per row, each with a caption below: what the render scripts and the
benchmarks draw (lines as drawn, augmented, or read by a model against their truth)."""

from pathlib import Path
from typing import BinaryIO

from matplotlib.figure import Figure


def save_line_grid(images, captions, path: str | Path | BinaryIO, title: str, colors=None) -> None:
    """`images`: uint8 or [0, 1] float arrays [H, W]; `colors`: optional caption colour per row;
    `path`: a PNG file, or a binary stream to write the PNG to."""
    height = 1.25 * len(images) + 0.6
    fig = Figure(figsize=(12, height))
    axes = fig.subplots(len(images), 1, squeeze=False)
    for row, (ax, image, caption) in enumerate(zip(axes[:, 0], images, captions)):
        ax.imshow(
            image,
            cmap="gray",
            vmin=0,
            vmax=255 if image.dtype == "uint8" else 1,
            interpolation="nearest",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(
            caption, family="monospace", fontsize=9, color=colors[row] if colors else "black"
        )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))  # keep the title's inches above the rows
    fig.savefig(path, dpi=100)


def save_prediction_grid(
    images, truths, predictions, path: str | Path | BinaryIO, title: str
) -> None:
    """Each line with its truth and the (text, confidence) read from it, misreads in red."""
    from evaluation.text_metrics import character_error_rate

    captions, colors = [], []
    for truth, (prediction, confidence) in zip(truths, predictions):
        cer = character_error_rate([truth], [prediction])
        captions.append(
            f"truth: {truth!r}\npred:  {prediction!r} (conf {confidence:.2f}, CER {cer:.2f})"
        )
        colors.append("black" if prediction == truth else "firebrick")
    save_line_grid(images, captions, path, title, colors)
