"""The labeling loop without a person: label pages in Label Studio, export, retrain, compare.

    python -m benchmarks.labeling_loop [--data-dir ../shared/data/htr/hooker] [--pages 20]
        [--base-pages 100] [--base-epochs 5] [--epochs 5] [--control] [--root artifacts/labeling_loop]

On the Hooker letters (PAGE-XML), split by page: the 28 eval pages of data/hooker_eval_pages.txt
are the test pages throughout, `--base-pages` other pages train the base line model, and
`--pages` further pages (never seen by it) are "labeled": their Transkribus transcriptions are
posted through Label Studio's API as a labeler's annotations (line polygons + text), the
project is exported through the API, converted by labeling.export, and the base model is
warm-started on them. It prints the time of every step and the CER on the eval pages before
(base model) and after (retrained), as JSON and a Markdown table for docs/labeling.md. With
`--control`, the base model is also trained on its own pages for as many line updates, which
tells more training apart from new pages.

Page folders are links to the shared data in a temporary folder; nothing is copied into the
repository. Each training run is the whole pipeline in its own root (benchmarks.lines_benchmark).
"""

import argparse
import json
import os
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lines_benchmark import pipeline_run
from common.quiet import quiet
from data.lines import read_page_list
from data.locations import SHARED_DATA
from data.pagexml import line_text, region_order
from data.xml_pages import parse_xml, polygon_line
from labeling.export import export
from labeling.project import download_export, ensure_project, import_pages
from labeling.regions import prediction_results
from labeling.server import running
from trainer.config import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]
EVAL_PAGES = REPO / "data" / "hooker_eval_pages.txt"
FIGURES = ("cer", "wer", "train_lines", "eval_lines", "epochs", "trainer_fit_seconds")


def split_pages(data_dir: Path, labeled: int, base: int, seed: int) -> tuple:
    """(eval, labeled, base) page stems: the fixed eval list, then disjoint seeded draws."""
    stems = sorted(p.stem for p in data_dir.glob("*.xml"))
    eval_pages = read_page_list(EVAL_PAGES)
    rest = [s for s in stems if s not in set(eval_pages)]
    order = np.random.default_rng(seed).permutation(len(rest))
    drawn = [rest[i] for i in order]
    if labeled + base > len(drawn):
        raise SystemExit(f"--pages + --base-pages > the {len(drawn)} non-eval pages")
    return eval_pages, drawn[:labeled], drawn[labeled : labeled + base]


def link_pages(data_dir: Path, stems, folder: Path, xml: bool = True) -> Path:
    """`folder` with symbolic links to each page's image (and XML) in `data_dir`."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        xml_path = data_dir / f"{stem}.xml"
        image = _page(xml_path).get("imageFilename", "")
        for name in [image] + ([xml_path.name] if xml else []):
            (folder / name).symlink_to(data_dir / name)
    return folder


def transcriptions(xml_path: Path) -> tuple:
    """(image name, width, height, [(polygon, text), ...]) of a page's non-empty lines."""
    page = _page(xml_path)
    lines = []
    for region in region_order(page):
        for line in region.findall("TextLine"):
            coords = line.find("Coords")
            parsed = polygon_line(
                "", line_text(line), None if coords is None else coords.get("points")
            )
            if parsed.text.strip() and not parsed.problem:
                lines.append((parsed.points, parsed.text))
    return (
        page.get("imageFilename"),
        int(page.get("imageWidth", 0)),
        int(page.get("imageHeight", 0)),
        lines,
    )


def _page(xml_path: Path) -> ET.Element:
    page = parse_xml(xml_path)[0].find("Page")
    if page is None:
        raise SystemExit(f"{xml_path}: no Page element")
    return page


def line_config(args, epochs: int, warm_start: str = "") -> ExperimentConfig:
    """line_crnn on a PAGE-XML folder with the eval pages fixed (the handwriting benchmark's
    geometry: 32 x 640 lines)."""
    return ExperimentConfig.from_dict(
        {
            "dataset": "PageXmlLinesDataset",
            "model": "LineModelCtc",
            "network": "line_crnn",
            "network_args": {"conv_filters": args.conv_filters},
            "dataset_args": {
                "max_length": 64,
                "height": 32,
                "max_width": 640,
                "eval_pages": str(EVAL_PAGES),
            },
            "train_args": {
                "epochs": epochs,
                "batch_size": 32,
                "learning_rate": args.learning_rate,
                "warm_start": warm_start,
                "keep_best": "last",  # no epoch picked on the eval pages, which are the test
            },
        }
    )


def train(args, folder: Path, epochs: int, root: Path, warm_start: str = "") -> dict:
    run_args = argparse.Namespace(data_dir=str(folder), max_cer=1.0, max_cer_increase=1.0)
    result = pipeline_run(line_config(args, epochs, warm_start), run_args, root)
    if not result["pushed_to"]:
        raise SystemExit(f"the run in {root} pushed nothing (CER {result['cer']})")
    return result


def control(args, base_folder: Path, warm: str, base: dict, retrained: dict) -> dict:
    """The base model trained on, on its own pages, for about as many line updates as the
    retrained one had: how much of the retrained model's gain is more training, not new pages."""
    updates = retrained["train_lines"] * retrained["epochs"]
    epochs = max(1, round(updates / base["train_lines"]))
    return train(args, base_folder, epochs, args.root / "control", warm)


def label_in_label_studio(args, data_dir: Path, labeled, work: Path, times: dict) -> Path:
    """Posts the labeled pages' transcriptions as annotations, returns the downloaded export."""
    batch = link_pages(data_dir, labeled, work / "served" / "batch", xml=False)
    started = time.perf_counter()
    with running(work / "served", port=0, data_dir=work / "label-studio") as server:
        times["label_studio_start"] = time.perf_counter() - started
        client = server.client()
        started = time.perf_counter()
        project = ensure_project(client, "Hooker corrections")
        tasks = import_pages(client, project, batch)
        times["import_pages"] = time.perf_counter() - started
        started = time.perf_counter()
        for task in tasks:
            stem = Path(task["storage_filename"]).stem
            _, width, height, lines = transcriptions(data_dir / f"{stem}.xml")
            result = prediction_results(lines, width, height)
            client.post(f"/api/tasks/{task['id']}/annotations", {"result": result})
        times["post_annotations"] = time.perf_counter() - started
        started = time.perf_counter()
        export_json = work / "export.json"
        download_export(client, project, export_json)
        times["download_export"] = time.perf_counter() - started
    return export_json


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("PAGEXML_DIR", str(SHARED_DATA / "htr" / "hooker"))),
    )
    parser.add_argument("--pages", type=int, default=20, help="pages labeled in Label Studio")
    parser.add_argument("--base-pages", type=int, default=100, help="pages the base model sees")
    parser.add_argument("--base-epochs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the warm-started run")
    parser.add_argument("--conv-filters", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--control",
        action="store_true",
        help="also train the base model on its own pages for as many line updates",
    )
    parser.add_argument("--root", type=Path, default=Path("artifacts/labeling_loop"))
    args = parser.parse_args(argv)
    quiet()
    if not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist (set PAGEXML_DIR)")

    eval_pages, labeled, base = split_pages(args.data_dir, args.pages, args.base_pages, args.seed)
    times: dict = {}
    with tempfile.TemporaryDirectory(prefix="labeling_loop_") as tmp:
        work = Path(tmp)
        base_folder = link_pages(args.data_dir, base + eval_pages, work / "base")
        started = time.perf_counter()
        before = train(args, base_folder, args.base_epochs, args.root / "base")
        times["train_base"] = time.perf_counter() - started

        export_json = label_in_label_studio(args, args.data_dir, labeled, work, times)
        started = time.perf_counter()
        summary, report = export(
            export_json, work / "served" / "batch", work / "export", progress=False
        )
        times["convert"] = time.perf_counter() - started

        retrain_folder = work / "export" / "pages"
        link_pages(args.data_dir, eval_pages, retrain_folder)
        started = time.perf_counter()
        warm = str(Path(before["pushed_to"]).parent)
        after = train(args, retrain_folder, args.epochs, args.root / "retrain", warm)
        times["retrain_warm"] = time.perf_counter() - started
        runs = {"base": before, "retrained on the labeled pages (warm start)": after}
        if args.control:
            started = time.perf_counter()
            runs["control: base pages again (warm start)"] = control(
                args, base_folder, warm, before, after
            )
            times["control"] = time.perf_counter() - started

    result: dict[str, Any] = {
        "pages": {"eval": len(eval_pages), "labeled": len(labeled), "base": len(base)},
        "labeled_lines": summary.lines,
        "export_problems": [str(p) for p in summary.problems],
        "converted": {split: s["lines"] for split, s in report["splits"].items()},
        "runs": {name: {k: r[k] for k in FIGURES} for name, r in runs.items()},
        "seconds": {step: round(s, 1) for step, s in times.items()},
    }
    print(json.dumps(result, indent=1))
    print("\n| step | seconds |\n|---|---|")
    for step, seconds in result["seconds"].items():
        print(f"| {step} | {seconds} |")
    print("\n| model | train lines | epochs | eval lines | CER | WER |\n|---|---|---|---|---|---|")
    for name, r in runs.items():
        print(
            f"| {name} | {r['train_lines']} | {r['epochs']} | {r['eval_lines']} "
            f"| {r['cer']:.4f} | {r['wer']:.4f} |"
        )


if __name__ == "__main__":
    main()
