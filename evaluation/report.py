"""A self-contained HTML report of a run, optionally against a baseline run, that a person can read:

    python -m evaluation.report RUN [--baseline RUN] --out DIR [--root artifacts]

writes DIR/report.html with its PNG figures embedded (and also beside it, in DIR). From what the
components wrote: TFMA's metrics overall and per slice and its validation result (blessed, or
which threshold failed by how much; `tfma.load_eval_result`, `tfma.load_validation_result`), the
Trainer's training_metrics.json (training curves, kept epoch), the run's config from MLMD.

What TFMA did not keep, the report computes once from the eval split the Evaluator read, with the
run's trained model (its `from_examples` signature, as TFMA called it): the confusion matrix of a
character model, the most frequent character substitutions of a line model (and the characters
it dropped and added), and the worst-read examples. (The Evaluator's EvalConfig asks TFMA for
no confusion plot and no predictions, and a run already evaluated cannot be asked again.)

It finds runs through `training.runs` (ML Metadata), the one import here from the runner layer.
"""

import argparse
import base64
import collections
import glob
import html
import io
import json
import os
import sys

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from data.features import CHARACTER_KEY, IMAGE_KEY, LABEL_KEY, LENGTH_KEY, SOURCE_KEY
from evaluation.text_metrics import character_error_rate, labels_to_text

WORST = 12  # examples in the grid of worst reads
MAX_EXAMPLES = 2000  # eval examples read for the confusion matrix / substitutions


def predictions(run, config: dict, limit: int = MAX_EXAMPLES) -> list:
    """[{"truth", "read", "score", "image", "slices"}] of the eval split the Evaluator read, read by
    the run's model; `score`: the truth's probability (characters) or the line's CER."""
    import tensorflow as tf

    from common.signatures import EXAMPLES_INPUT, EXAMPLES_SIGNATURE
    from trainer.datasets import DATASETS

    dataset = DATASETS[config["dataset"]]
    node, key = (
        ("Transform", "transformed_examples")
        if dataset.evaluate_transformed
        else ("ImportExampleGen", "examples")
    )
    files = sorted(glob.glob(os.path.join(run.uri(node, key), "Split-eval", "*")))
    records = [
        r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)
    ]
    model = tf.saved_model.load(os.path.join(run.uri("Trainer", "model"), "Format-Serving"))
    read = model.signatures[EXAMPLES_SIGNATURE]
    shape = dataset.image_shape(config["dataset_args"])[:2]
    rows = []
    for start in range(0, len(records), 256):
        batch = records[start : start + 256]
        outputs = {k: v.numpy() for k, v in read(**{EXAMPLES_INPUT: tf.constant(batch)}).items()}
        for i, record in enumerate(batch):
            features = tf.train.Example.FromString(record).features.feature
            rows.append(
                _character_row(features, outputs, i, dataset.charset)
                if "probabilities" in outputs
                else _line_row(features, outputs, i, shape)
            )
    return rows


def _character_row(features, outputs: dict, i: int, charset) -> dict:
    label = features[LABEL_KEY].int64_list.value[0]
    image = _decode_png(features[IMAGE_KEY].bytes_list.value[0])
    return {
        "truth": charset[label],
        "read": charset[int(outputs["class_index"][i])],
        "score": float(outputs["probabilities"][i][label]),
        "image": image,
        "slices": {},
    }


def _line_row(features, outputs: dict, i: int, shape) -> dict:
    truth = labels_to_text(features[LABEL_KEY].int64_list.value)
    text = outputs["text"][i].decode()
    slices = {key: _first(features[key]) for key in (LENGTH_KEY, SOURCE_KEY) if key in features}
    image = np.asarray(features[IMAGE_KEY].float_list.value, np.float32).reshape(shape)
    return {
        "truth": truth,
        "read": text,
        "score": character_error_rate([truth], [text]),
        "image": image,
        "slices": slices,
    }


def _first(feature):
    kind = feature.WhichOneof("kind")
    value = getattr(feature, kind).value[0]
    return value.decode() if isinstance(value, bytes) else value


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def substitutions(truth: str, read: str) -> list:
    """The (truth char, read char) pairs a minimal edit alignment substitutes."""
    return [(a, b) for a, b in edits(truth, read) if a and b]


def edits(truth: str, read: str) -> list:
    """The (truth char, read char) pairs a minimal edit alignment changes: substitutions, and
    deletions (read "") and insertions (truth "")."""
    rows, cols = len(truth) + 1, len(read) + 1
    cost = np.zeros((rows, cols), int)
    cost[:, 0], cost[0, :] = range(rows), range(cols)
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i, j] = min(
                cost[i - 1, j] + 1,
                cost[i, j - 1] + 1,
                cost[i - 1, j - 1] + (truth[i - 1] != read[j - 1]),
            )
    pairs, i, j = [], rows - 1, cols - 1
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (truth[i - 1] != read[j - 1]):
            if truth[i - 1] != read[j - 1]:
                pairs.append((truth[i - 1], read[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            pairs.append((truth[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", read[j - 1]))
            j -= 1
    return pairs[::-1]


# Figures: each returns PNG bytes.


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def curves_figure(histories: dict) -> bytes:
    """Loss and each validation metric per epoch, one line per run."""
    names = sorted(
        {name for history in histories.values() for name in history if not name.startswith("val_")}
    )
    fig = Figure(figsize=(4 * len(names), 3))
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        for run, history in histories.items():
            for key, style in ((name, "--"), (f"val_{name}", "-")):
                if key in history:
                    epochs = range(1, len(history[key]) + 1)
                    ax.plot(epochs, history[key], style, marker="o", label=f"{run} {key}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def slices_figure(by_slice: dict, metric: str, feature: str) -> bytes:
    """`metric` per value of a slicing feature, one bar group per run."""
    keys = sorted(
        {k for values in by_slice.values() for k in values}, key=lambda k: (str(type(k)), k)
    )
    fig = Figure(figsize=(min(13, max(6, 0.18 * len(keys) * len(by_slice))), 3))
    ax = fig.subplots()
    width = 0.8 / len(by_slice)
    for n, (run, values) in enumerate(by_slice.items()):
        ax.bar(np.arange(len(keys)) + n * width, [values.get(k, 0) for k in keys], width, label=run)
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, [str(k) for k in keys], fontsize=7)
    ax.set_xlabel(feature)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def confusion_figure(rows: list, charset) -> bytes:
    index = {c: i for i, c in enumerate(charset)}
    matrix = np.zeros((len(charset), len(charset)))
    for row in rows:
        matrix[index[row["truth"]], index[row["read"]]] += 1
    fig = Figure(figsize=(9, 8.5))
    ax = fig.subplots()
    shown = ax.imshow(
        matrix / np.maximum(matrix.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1
    )
    ax.set_xticks(range(len(charset)), charset, fontsize=6)
    ax.set_yticks(range(len(charset)), charset, fontsize=6)
    ax.set_xlabel("read")
    ax.set_ylabel("truth")
    fig.colorbar(shown, ax=ax, label="share of the truth's examples")
    fig.tight_layout()
    return _png(fig)


def worst_figure(rows: list, lines: bool, path: str) -> bytes:
    """The worst-read examples: highest CER lines, or characters with the lowest truth probability."""
    worst = sorted(rows, key=lambda r: -r["score"] if lines else r["score"])[:WORST]
    if lines:
        from evaluation.line_grid import save_line_grid

        save_line_grid(
            [r["image"] for r in worst],
            [f"truth: {r['truth']!r}\nread:  {r['read']!r} (CER {r['score']:.2f})" for r in worst],
            path,
            "worst-read eval lines",
        )
        return open(path, "rb").read()
    fig = Figure(figsize=(1.4 * len(worst), 1.9))
    for ax, row in zip(fig.subplots(1, len(worst), squeeze=False)[0], worst):
        ax.imshow(row["image"], cmap="gray")
        ax.set_axis_off()
        ax.set_title(f"{row['truth']!r}→{row['read']!r}\np={row['score']:.2f}", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _dropped_added_html(counts: collections.Counter) -> str:
    """The characters the model dropped and added most often (an early CTC model reads little
    but blanks, so its errors are deletions, which no substitution shows)."""
    parts = []
    for name, side in (("dropped", 0), ("added", 1)):
        chars = [(pair[side], n) for pair, n in counts.most_common() if not pair[1 - side]]
        listed = ", ".join(f"{c!r} {n}" for c, n in chars[:20])
        parts.append(f"{name} {sum(n for _, n in chars)}" + (f" ({listed})" if listed else ""))
    return f"<p>Characters {html.escape('; '.join(parts))}.</p>"


def validation_html(run) -> str:
    if run.blessed is None:
        return "<p>Not evaluated.</p>"
    if run.blessed:
        return '<p class="ok">BLESSED: every threshold passed.</p>'
    failures = "".join(f"<li>{html.escape(text)}</li>" for text in run.validation)
    return f'<p class="bad">NOT blessed:</p><ul>{failures}</ul>'


def table_html(rows: list, headers: list) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _slice_values(run, feature: str, metric: str) -> dict:
    return {
        key[0][1]: values[metric]
        for key, values in run.metrics.items()
        if len(key) == 1 and key[0][0] == feature and metric in values
    }


def build(run, baseline, out: str) -> str:
    """Writes out/report.html and its figures; returns the report's path."""
    from trainer.datasets import DATASETS

    os.makedirs(out, exist_ok=True)
    runs = [r for r in (run, baseline) if r is not None]
    config = run.config
    dataset = DATASETS[config["dataset"]]
    lines = dataset.provides == "lines"
    figures, sections = {}, []

    def figure(name: str, png: bytes, caption: str) -> str:
        with open(os.path.join(out, name), "wb") as f:
            f.write(png)
        figures[name] = png
        encoded = base64.b64encode(png).decode()
        return f'<figure><img alt="{name}" src="data:image/png;base64,{encoded}"><figcaption>{html.escape(caption)}</figcaption></figure>'

    overall = sorted(set().union(*(r.metrics.get((), {}) for r in runs)))
    sections.append(
        "<h2>Metrics overall</h2>"
        + table_html(
            [
                [name, *(f"{r.metrics.get((), {}).get(name, float('nan')):.4g}" for r in runs)]
                for name in overall
            ],
            ["metric", *(r.name for r in runs)],
        )
    )
    sections.append(
        "<h2>Validation</h2>"
        + "".join(f"<h3>{html.escape(r.name)}</h3>{validation_html(r)}" for r in runs)
    )
    metric = "cer" if lines else "sparse_categorical_accuracy"
    for feature in (LENGTH_KEY, *dataset.slice_features) if lines else (CHARACTER_KEY,):
        by_slice = {r.name: _slice_values(r, feature, metric) for r in runs}
        if any(by_slice.values()):
            sections.append(
                f"<h2>{metric} by {feature}</h2>"
                + figure(
                    f"{metric}_by_{feature}.png",
                    slices_figure(by_slice, metric, feature),
                    f"{metric} per {feature} slice, as TFMA computed it",
                )
            )
    histories = {r.name: r.training["history"] for r in runs if r.training.get("history")}
    if histories:
        kept = ", ".join(
            f"{r.name}: epoch {r.training.get('kept_epoch')} by {r.training.get('kept_by')}"
            for r in runs
        )
        sections.append(
            "<h2>Training curves</h2>"
            + figure(
                "training_curves.png",
                curves_figure(histories),
                f"dashed: train, solid: validation; kept {kept}",
            )
        )
    rows = predictions(run, config)
    if lines:
        counts = collections.Counter(p for row in rows for p in edits(row["truth"], row["read"]))
        sections.append(
            f"<h2>Most frequent substitutions ({len(rows)} eval lines)</h2>"
            + table_html(
                [[repr(a), repr(b), n] for (a, b), n in counts.most_common() if a and b][:20],
                ["truth", "read", "count"],
            )
            + _dropped_added_html(counts)
        )
    else:
        sections.append(
            f"<h2>Confusion matrix ({len(rows)} eval examples)</h2>"
            + figure(
                "confusion_matrix.png",
                confusion_figure(rows, dataset.charset),
                "rows: truth, columns: read",
            )
        )
    sections.append(
        "<h2>Worst-read examples</h2>"
        + figure(
            "worst_examples.png",
            worst_figure(rows, lines, os.path.join(out, "worst_examples.png")),
            "highest CER lines" if lines else "lowest probability of the true character",
        )
    )
    title = f"Run {run.name}" + (f" against {baseline.name}" if baseline else "")
    header = table_html(
        [
            [
                r.name,
                r.group or "-",
                r.status,
                f"{r.seconds:.0f}s",
                r.pushed_version or "-",
                json.dumps(r.config, sort_keys=True),
            ]
            for r in runs
        ],
        ["run", "group", "status", "wall", "pushed", "config"],
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{header}"
        + "".join(f"<section>{s}</section>" for s in sections)
        + "</body></html>"
    )
    path = os.path.join(out, "report.html")
    with open(path, "w") as f:
        f.write(page)
    return path


STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}
td:last-child{word-break:break-all}img{max-width:100%}.ok{color:#060;font-weight:bold}.bad{color:#b00;font-weight:bold}
figcaption{font-size:12px;color:#555}"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run id, name, unique prefix, or latest")
    parser.add_argument("--baseline", help="a run to compare with")
    parser.add_argument("--out", required=True, help="folder for report.html and its figures")
    parser.add_argument("--root", default="artifacts", help="the pipeline root of the runs")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    from common.quiet import quiet

    quiet(args.verbose)
    from training.runs import find_run, load_runs

    runs = load_runs(os.path.join(args.root, "metadata.sqlite"))
    try:
        run = find_run(runs, args.run)
        baseline = find_run(runs, args.baseline) if args.baseline else None
    except LookupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(build(run, baseline, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
