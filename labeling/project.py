"""A Label Studio project over a folder of handwriting pages, optionally pre-annotated.

    python -m labeling.project --url URL --token T --pages DIR [--title "Handwriting pages"]
        [--preannotate [--models artifacts/serving | --server URL]] [--export FILE]

Idempotent by title: the first run creates the project (labeling config below), later runs
update its config and import pages added to the folder since. The pages are imported through
Label Studio's local-files storage (DIR must be a subfolder of the server's --pages folder),
so images are served from where they are, never uploaded or copied. `--preannotate` reads
each page not yet pre-annotated by the same models with the project's page recognizer
(serving.paragraph: line detector + line model, pushed under --models or served at --server)
and attaches its line polygons and text as predictions, which the labeler corrects instead of
drawing every line. `--export FILE` writes the project's full JSON export for labeling.export.

The token defaults to $LABEL_STUDIO_USER_TOKEN (labeling.server prints it).
"""

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from labeling.client import LabelingError, LabelStudio
from labeling.regions import (
    IMAGE_TAG,
    LINE_LABEL,
    POLYGON_TAG,
    RECTANGLE_TAG,
    TEXT_TAG,
    prediction_results,
)

DEFAULT_TITLE = "Handwriting pages"
IMAGE_FILES = r"(?i).*\.(png|jpe?g|tiff?|gif|bmp|webp)$"
# One shape per line of handwriting (a polygon for slanted or curved lines, a rectangle for
# straight ones) and, per region, its transcription; required, so a line cannot be submitted
# without its text.
LABEL_CONFIG = f"""<View>
  <Header value="Outline every line of handwriting, then type what it says (select a line to edit its text)"/>
  <Image name="{IMAGE_TAG}" value="$image" zoom="true" zoomControl="true"/>
  <PolygonLabels name="{POLYGON_TAG}" toName="{IMAGE_TAG}" strokeWidth="2" opacity="0.15">
    <Label value="{LINE_LABEL}" background="#1f77b4"/>
  </PolygonLabels>
  <RectangleLabels name="{RECTANGLE_TAG}" toName="{IMAGE_TAG}" strokeWidth="2" opacity="0.15">
    <Label value="{LINE_LABEL}" background="#ff7f0e"/>
  </RectangleLabels>
  <TextArea name="{TEXT_TAG}" toName="{IMAGE_TAG}" perRegion="true" required="true"
            editable="true" maxSubmissions="1" rows="1" placeholder="the line's text"/>
</View>
"""


def ensure_project(client: LabelStudio, title: str) -> int:
    """The id of the project titled `title`, created or brought to LABEL_CONFIG."""
    found = [p for p in client.get("/api/projects", title=title)["results"] if p["title"] == title]
    if not found:
        created = client.post("/api/projects", {"title": title, "label_config": LABEL_CONFIG})
        print(f"created project {title!r} (id {created['id']})")
        return created["id"]
    project = found[0]
    if project["label_config"].strip() != LABEL_CONFIG.strip():  # stored without the last newline
        client.patch(f"/api/projects/{project['id']}", {"label_config": LABEL_CONFIG})
        print(f"updated the labeling config of project {title!r} (id {project['id']})")
    return project["id"]


def import_pages(client: LabelStudio, project: int, pages: Path) -> list:
    """Syncs the project's local-files storage of `pages` (made once) and returns its tasks."""
    pages = pages.resolve()
    if not pages.is_dir():
        raise LabelingError(f"pages folder {pages} is not a directory")
    storages = client.get("/api/storages/localfiles", project=project)
    storage = next((s for s in storages if Path(s["path"]).resolve() == pages), None)
    if storage is None:
        storage = client.post(
            "/api/storages/localfiles",
            {
                "project": project,
                "title": pages.name,
                "path": str(pages),
                "regex_filter": IMAGE_FILES,
                "use_blob_urls": True,  # one task per image, its URL served by Label Studio
            },
        )
    before = client.get(f"/api/projects/{project}")["task_number"]
    synced = client.post(f"/api/storages/localfiles/{storage['id']}/sync")
    if synced.get("status") == "failed":
        raise LabelingError(f"importing {pages} failed: {synced.get('traceback')}")
    tasks = client.tasks(project)
    print(f"{len(tasks)} pages in the project ({len(tasks) - before} new from {pages})")
    return tasks


def preannotate(
    client: LabelStudio, project: int, tasks: list, pages: Path, recognizer, model_version: str
):
    """Predictions of `recognizer` (serving.paragraph) for the tasks that have none from
    `model_version`; a page it cannot read is reported and skipped."""
    from tqdm import tqdm

    from serving.errors import ServingError
    from serving.images import PredictionError

    done = {
        p["task"]
        for p in client.get("/api/predictions", project=project)
        if p["model_version"] == model_version
    }
    todo = [t for t in tasks if t["id"] not in done]
    failed = 0
    for task in tqdm(todo, desc="pre-annotating", unit="page"):
        image = task_image_path(task, pages)
        try:
            page = recognizer.recognize(image)
        except (PredictionError, ServingError) as e:
            tqdm.write(f"error: task {task['id']} ({image}): {e}", file=sys.stderr)
            failed += 1
            continue
        lines = [(line.polygon, line.text) for line in page.lines]
        confidences = [line.confidence for line in page.lines]
        client.post(
            "/api/predictions",
            {
                "task": task["id"],
                "model_version": model_version,
                "score": sum(confidences) / len(confidences) if confidences else 0.0,
                "result": prediction_results(lines, page.width, page.height),
            },
        )
    print(
        f"pre-annotated {len(todo) - failed} pages with {model_version}"
        + (f"; {failed} failed" if failed else "")
        + (f" ({len(tasks) - len(todo)} already were)" if len(tasks) > len(todo) else "")
    )


def task_image_path(task: dict, pages: Path) -> Path:
    """The image behind a task imported by `import_pages`."""
    if task.get("storage_filename"):
        return Path(task["storage_filename"])
    local = parse_qs(urlparse(task["data"]["image"]).query)["d"][0]
    return pages / Path(local).name


def download_export(client: LabelStudio, project: int, path: Path) -> int:
    """Writes the project's full JSON export (every labeled task) to `path`; returns its tasks."""
    tasks = client.get(f"/api/projects/{project}/export", exportType="JSON")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return len(tasks)


def recognizer_for(models: str, server: str | None):
    """(serving.paragraph recognizer, model version name): in process from the serving base, or
    over REST from a model server."""
    from serving import paragraph

    if server:
        return paragraph.over_rest(server), f"page recognizer at {server}"
    recognizer = paragraph.in_process(models)
    return recognizer, (
        f"{Path(recognizer.detector.model_dir).parent.name} "
        f"{Path(recognizer.detector.model_dir).name}"
        f" + {Path(recognizer.reader.model_dir).parent.name} {Path(recognizer.reader.model_dir).name}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labeling.project", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Label Studio's address")
    parser.add_argument("--token", default=os.environ.get("LABEL_STUDIO_USER_TOKEN"))
    parser.add_argument("--pages", type=Path, required=True, help="folder of page images")
    parser.add_argument("--title", default=DEFAULT_TITLE)
    parser.add_argument("--preannotate", action="store_true", help="add the recognizer's lines")
    parser.add_argument("--models", default="artifacts/serving", help="serving base (pushed)")
    parser.add_argument("--server", help="REST URL of a model server serving the models instead")
    parser.add_argument("--export", type=Path, metavar="FILE", help="write the JSON export here")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token is required (or set LABEL_STUDIO_USER_TOKEN)")
    from common.quiet import quiet
    from serving.images import PredictionError

    quiet(args.verbose)
    client = LabelStudio(args.url, args.token)
    try:
        project = ensure_project(client, args.title)
        tasks = import_pages(client, project, args.pages)
        if args.preannotate:
            recognizer, version = recognizer_for(args.models, args.server)
            preannotate(client, project, tasks, args.pages, recognizer, version)
        if args.export:
            count = download_export(client, project, args.export)
            print(f"exported {count} labeled pages to {args.export}")
    except (LabelingError, PredictionError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"label at {args.url.rstrip('/')}/projects/{project}/data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
