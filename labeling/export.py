"""Label Studio's JSON export -> PAGE-XML pages -> line TFRecords for the pipeline.

    python -m labeling.export EXPORT.json --pages DIR --out DIR
        [--eval-fraction 0.1] [--eval-pages FILE] [--max-length N]

Reads the full JSON export (Export -> JSON, or labeling.project --export) of a project made by
labeling.project. Per labeled task it takes one annotation (the ground-truth one, else the
latest), finds the task's image by file name in `--pages`, and writes OUT/pages/<image>.xml
(data.pagexml_writer) beside a copy of the image and of the export itself, so OUT/pages is a
self-contained PAGE-XML dataset (train on it with PageXmlLinesDataset, `dataset_args.path` OUT/pages); data.lines
then converts it into OUT/lines/{train,eval}, whose metadata.json (data.versions) records the
sha256 of every file in OUT/pages.

Nothing is guessed: a region without text, a text without a region, a rotated rectangle, an
image labeled at another size, or an image that no longer exists is listed as a problem naming
the task and region (printed, and all of them in OUT/problems.json), and everything else is
exported.
"""

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlparse

from PIL import Image, UnidentifiedImageError

from data.errors import DatasetError
from labeling.regions import Problem, page_lines

MAX_PRINTED_PROBLEMS = 20
EXPORT_DATASET = "LabelStudioExport"  # the `dataset` of the lines' metadata.json
EXPORT_COPY = "label-studio-export.json"  # the export, copied into OUT/pages


@dataclass
class ExportSummary:
    pages: int = 0
    lines: int = 0
    unlabeled_tasks: int = 0
    problems: list[Problem] = field(default_factory=list)


def read_export(path: Path) -> list[dict]:
    """The tasks of a full JSON export; a JSON-MIN or CSV export is refused with a clear error."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DatasetError(f"export {path} is not readable: {e}") from e
    except ValueError as e:
        raise DatasetError(f"export {path} is not JSON: {e}") from e
    if not isinstance(tasks, list) or not all(
        isinstance(t, dict) and "data" in t and "annotations" in t for t in tasks
    ):
        raise DatasetError(
            f"export {path} is not Label Studio's full JSON export (a list of tasks with 'data' "
            "and 'annotations'; JSON-MIN and CSV exports lack the regions)"
        )
    return tasks


def write_pages(tasks: list[dict], pages: Path, out_pages: Path) -> ExportSummary:
    """One PAGE-XML file and image copy in `out_pages` per labeled task with usable lines."""
    from data.pagexml_writer import WrittenLine, write_page

    summary = ExportSummary()
    written: dict[str, int | str] = {}  # image name -> task that wrote it
    out_pages.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        task_id = task.get("id", "?")
        annotation = choose_annotation(task)
        if annotation is None:
            summary.unlabeled_tasks += 1
            continue
        image = _task_image(task, pages)
        if isinstance(image, str):
            summary.problems.append(Problem(task_id, "", image))
            continue
        if image.name in written:
            summary.problems.append(
                Problem(task_id, "", f"image {image.name} is also task {written[image.name]}'s")
            )
            continue
        try:
            with Image.open(image) as opened:
                width, height = opened.size
        except (OSError, UnidentifiedImageError) as e:
            summary.problems.append(Problem(task_id, "", f"image {image} is not readable: {e}"))
            continue
        lines, problems = page_lines(task_id, annotation.get("result", []), width, height)
        summary.problems += problems
        if not lines:
            summary.problems.append(Problem(task_id, "", f"no usable lines on {image.name}"))
            continue
        shutil.copyfile(image, out_pages / image.name)
        write_page(
            out_pages / f"{image.stem}.xml",
            image.name,
            width,
            height,
            [WrittenLine(line.points, line.text) for line in lines],
        )
        written[image.name] = task_id
        summary.pages += 1
        summary.lines += len(lines)
    return summary


def choose_annotation(task: dict) -> dict | None:
    """The ground-truth annotation, else the most recently updated one; cancelled (skipped)
    annotations never count."""
    annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    if not annotations:
        return None
    return max(
        annotations,
        key=lambda a: (bool(a.get("ground_truth")), str(a.get("updated_at", "")), a.get("id", 0)),
    )


def export(
    export_json: Path,
    pages: Path,
    out: Path,
    eval_fraction: float = 0.1,
    eval_pages=(),
    max_length: int = 0,
    progress: bool = True,
) -> tuple[ExportSummary, dict]:
    """Pages, then line TFRecords (data.lines.convert's report); OUT/problems.json lists every
    problem. DatasetError when nothing at all could be exported."""
    from data.lines import convert
    from data.versions import file_digests, write_metadata

    out = Path(out)
    if not Path(pages).is_dir():
        raise DatasetError(f"pages folder {pages} is not a directory")
    tasks = read_export(export_json)
    _clear_previous_export(out)
    summary = write_pages(tasks, Path(pages), out / "pages")
    # Beside the pages, so the dataset version that trains on them (data.versions hashes every
    # file of the folder) names the export it came from: training.lineage shows its sha256.
    shutil.copyfile(export_json, out / "pages" / EXPORT_COPY)
    (out / "problems.json").write_text(
        json.dumps([asdict(p) for p in summary.problems], indent=1, ensure_ascii=False) + "\n"
    )
    if not summary.pages:
        raise DatasetError(
            f"nothing to export from {export_json}: {summary.unlabeled_tasks} unlabeled tasks, "
            f"{len(summary.problems)} problems ({out / 'problems.json'})"
        )
    report = convert(
        "pagexml",
        out / "pages",
        out / "lines",
        eval_fraction,
        eval_pages=eval_pages,
        max_length=max_length,
        progress=progress,
    )
    write_metadata(
        out / "lines",
        dataset=EXPORT_DATASET,
        source=str(Path(export_json).resolve()),
        inputs={f"pages/{name}": digest for name, digest in file_digests(out / "pages").items()},
        args={
            "pages": str(Path(pages).resolve()),
            "eval_fraction": eval_fraction,
            "eval_pages": sorted(eval_pages),
            "max_length": max_length,
        },
        label_studio={
            "tasks": len(tasks),
            "unlabeled_tasks": summary.unlabeled_tasks,
            "pages": summary.pages,
            "lines": summary.lines,
            "problems": len(summary.problems),
        },
    )
    return summary, report


def _clear_previous_export(out: Path) -> None:
    """A rerun replaces the previous export in `out` (recognized by its problems.json), so pages
    labeled before and unlabeled since do not linger; any other non-empty folder is refused."""
    if (out / "problems.json").is_file():
        for name in ("pages", "lines"):
            shutil.rmtree(out / name, ignore_errors=True)
    elif out.is_dir() and any(out.iterdir()):
        raise DatasetError(f"output folder {out} is not empty and not a previous export")
    out.mkdir(parents=True, exist_ok=True)


def _task_image(task: dict, pages: Path) -> Path | str:
    """The task's image file in `pages` (by the file name of its URL), or why there is none."""
    url = (task.get("data") or {}).get("image")
    if not isinstance(url, str) or not url:
        return f"no image URL in the task's data {task.get('data')!r}"
    parsed = urlparse(url)
    local = parse_qs(parsed.query).get("d")  # /data/local-files/?d=folder/page.jpg
    name = PurePosixPath(local[0] if local else unquote(parsed.path)).name
    path = pages / name
    return path if path.is_file() else f"image {name} no longer exists in {pages}"


def main(argv=None) -> int:
    from common.quiet import quiet
    from data.lines import format_report, read_page_list

    parser = argparse.ArgumentParser(
        prog="python -m labeling.export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("export", type=Path, help="Label Studio's full JSON export")
    parser.add_argument("--pages", type=Path, required=True, help="folder of the page images")
    parser.add_argument(
        "--out", type=Path, required=True, help="gets pages/, lines/, problems.json"
    )
    parser.add_argument("--eval-fraction", type=float, default=0.1)
    parser.add_argument("--eval-pages", type=Path, help="file of page ids that must be eval")
    parser.add_argument("--max-length", type=int, default=0, help="skip longer lines (0: keep all)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    quiet()
    try:
        eval_pages = read_page_list(args.eval_pages) if args.eval_pages else ()
        summary, report = export(
            args.export,
            args.pages,
            args.out,
            args.eval_fraction,
            eval_pages,
            args.max_length,
            not args.no_progress,
        )
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"exported {summary.pages} pages, {summary.lines} lines to {args.out / 'pages'} "
        f"({summary.unlabeled_tasks} unlabeled tasks left out)"
    )
    if summary.problems:
        print(f"{len(summary.problems)} problems, not exported ({args.out / 'problems.json'}):")
        for problem in summary.problems[:MAX_PRINTED_PROBLEMS]:
            print(f"  {problem}")
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
