"""Does a line's confidence separate right reads from wrong ones? Figures for a trained model.

    python -m benchmarks.confidence_benchmark --model DIR --config JSON --examples DIR [--limit 500]

`--model` is a pushed line model (a version, or its model folder: the newest version), `--config`
the experiment config it was trained with, `--examples` the folder its dataset prepared (real
lines: the PNG lines of its eval split; synthetic EMNIST lines: texts and seeds, drawn with the
eval glyph bank that the run's GlyphBanks step wrote, `--glyph-bank`: its glyphs-eval.npz). The model is rebuilt from the weights it carries (trainer/warm_start.py) and reads the
eval lines with the current decoding, in process, exactly as its serving signature would.

Printed (and returned by `figures`): the area under the ROC curve of confidence against
exact-line correctness (0.5 = no better than chance, 1 = every right read above every wrong one),
and the CER of the reads above and below a threshold (0.5, and the median confidence), with the
share of lines on each side: what a user who rejects doubtful reads would keep and lose.
"""

import argparse
import json

import numpy as np

from data.features import EVAL_SPLIT
from evaluation.text_metrics import character_error_rate


def roc_auc(scores, positives) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half."""
    scores, positives = np.asarray(scores, float), np.asarray(positives, bool)
    pos, neg = scores[positives], scores[~positives]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation (ties ranked by order; enough for a benchmark figure)."""
    first, second = (np.argsort(np.argsort(np.asarray(x, float))) for x in (a, b))
    return float(np.corrcoef(first, second)[0, 1])


def figures(truths: list, reads: list, confidence_list: list, thresholds=(0.5,)) -> dict:
    confidences = np.asarray(confidence_list, float)
    right = np.array([t == r for t, r in zip(truths, reads)])
    line_cer = [character_error_rate([t], [r]) for t, r in zip(truths, reads)]
    result: dict = {
        "lines": len(truths),
        "exact": float(right.mean()),
        "cer": character_error_rate(truths, reads),
        "auc": roc_auc(confidences, right),
        # Negative when more confident lines have fewer errors; informative when few are exact.
        "spearman_confidence_line_cer": rank_correlation(confidences, line_cer),
        "by_threshold": {},
    }
    for threshold in (*thresholds, float(np.median(confidences))):
        above = confidences >= threshold
        side = {}
        for name, mask in (("above", above), ("below", ~above)):
            chosen = np.flatnonzero(mask)
            side[name] = {
                "share": float(mask.mean()),
                "cer": character_error_rate([truths[i] for i in chosen], [reads[i] for i in chosen])
                if len(chosen)
                else None,
                "exact": float(right[mask].mean()) if len(chosen) else None,
            }
        result["by_threshold"][f"{threshold:.3f}"] = side
    return result


def eval_images(config, examples_dir: str, limit: int, glyph_bank: str | None = None) -> tuple:
    """(uint8 line images as a user would send them, truths) of the eval split."""
    from data.lines import read_line_images
    from trainer.datasets import DATASETS

    dataset = DATASETS[config.dataset]
    if hasattr(dataset, "synthesis"):
        from data.sentences import read_line_examples
        from transform.line_synthesis import load_glyph_bank, synthesize_lines

        if not glyph_bank:
            raise SystemExit(
                "synthetic lines need --glyph-bank: the eval bank (glyphs-eval.npz) of the run's "
                "GlyphBanks step"
            )
        texts, seeds = read_line_examples(examples_dir, EVAL_SPLIT)
        bank = load_glyph_bank(glyph_bank)
        images, _ = synthesize_lines(
            texts[:limit], seeds[:limit], bank, **dataset.synthesis(config.dataset_args)
        )
        return list((images.numpy() * 255).round().astype(np.uint8)), texts[:limit]
    return read_line_images(examples_dir, EVAL_SPLIT, limit)


def read(config, model_dir: str, images: list, batch: int = 32) -> tuple:
    """(texts, line confidences) of the model rebuilt from `model_dir`'s weights."""
    import tensorflow as tf

    from serving.images import encode_image
    from trainer.datasets import DATASETS
    from trainer.models import MODEL_KINDS, build_model
    from trainer.warm_start import warm_start
    from transform.preprocessing import decode_images

    dataset, kind = DATASETS[config.dataset], MODEL_KINDS[config.model]
    shape = dataset.image_shape(config.dataset_args)
    model = build_model(config, shape)
    warm_start(model, config, model_dir)
    texts, confidences = [], []
    for start in range(0, len(images), batch):
        encoded = tf.constant([encode_image(image) for image in images[start : start + batch]])
        normalized = decode_images(
            encoded,
            shape[0],
            shape[1],
            left_align=True,
            stretch_contrast=dataset.stretch_contrast,
        )
        outputs = kind.read(model, normalized, config)
        texts += [t.decode() for t in outputs["text"].numpy()]
        confidences += outputs["confidence"].numpy().tolist()
    return texts, confidences


def evaluate(
    config, model_dir: str, examples_dir: str, limit: int = 500, glyph_bank: str | None = None
) -> dict:
    images, truths = eval_images(config, examples_dir, limit, glyph_bank)
    reads, confidences = read(config, model_dir, images)
    return figures(truths, reads, confidences)


def markdown(name: str, result: dict) -> str:
    """One table row: the figures, then kept / rejected CER at each threshold (share kept)."""
    cells = [
        f"{result['lines']}",
        f"{result['cer']:.4f}",
        f"{result['exact']:.3f}",
        f"{result['auc']:.3f}",
        f"{result['spearman_confidence_line_cer']:.3f}",
    ]
    for _threshold, sides in result["by_threshold"].items():
        above, below = sides["above"], sides["below"]
        cells.append(f"{_fmt(above['cer'])} / {_fmt(below['cer'])} (keeps {above['share']:.0%})")
    return f"| {name} | " + " | ".join(cells) + " |"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def main(argv=None) -> None:
    from trainer.config import ExperimentConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--config", required=True, help="the experiment config (JSON) it was trained with"
    )
    parser.add_argument(
        "--examples", required=True, help="the prepared examples folder of its dataset"
    )
    parser.add_argument("--limit", type=int, default=500, help="eval lines to read")
    parser.add_argument("--glyph-bank", help="synthetic lines: the run's eval glyph bank")
    parser.add_argument("--name", default="model")
    args = parser.parse_args(argv)
    result = evaluate(
        ExperimentConfig.from_json(args.config),
        args.model,
        args.examples,
        args.limit,
        args.glyph_bank,
    )
    print(json.dumps(result, indent=2))
    thresholds = " | ".join(f"CER kept / rejected at {t}" for t in result["by_threshold"])
    print(
        f"\n| model | lines | CER | exact lines | AUC (confidence vs exact) | Spearman (confidence, "
        f"line CER) | {thresholds} |\n|---" * 1 + "|---" * (5 + len(result["by_threshold"])) + "|"
    )
    print(markdown(args.name, result))


if __name__ == "__main__":
    main()
