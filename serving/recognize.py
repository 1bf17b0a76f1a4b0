"""Read pages of handwriting: `python -m serving.recognize PAGE_IMAGE... --out DIR`.

For each page it prints the page's text and writes, in DIR, `<page>.png` (the page with each
detected line's polygon drawn and numbered in reading order) and `<page>.xml` (PAGE-XML
2019-07-15 naming the image by its file name, as Transkribus and eScriptorium import it: put the
image beside the XML). The models are the newest pushed `line_detector` and `lines` under
`--models` (artifacts/serving), loaded in this process, or, with `--server URL`, those served by
TF Serving (or serving.local_server) at that REST address. A page that cannot be read (missing
file, not an image, too small or too large) is reported naming the file, and the others are
still read; the exit status is then 1.
"""

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from common.quiet import quiet
from serving.errors import ServingError
from serving.images import PredictionError

DEFAULT_SERVING_BASE = "artifacts/serving"
COLORS = ("#d62728", "#1f77b4")  # alternate, as the detector's odd and even lines do


def draw_regions(source: Path | bytes, page) -> Image.Image:
    """The page (a file or encoded bytes) in color with each line's polygon outlined and
    numbered (1 = first line)."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
        image = opened.convert("RGB")
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 500))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 60)))
    for number, line in enumerate(page.lines, start=1):
        color = COLORS[number % 2]
        draw.polygon(line.polygon, outline=color, width=width)
        left, top = line.box[0], line.box[1]
        label = str(number)
        box = draw.textbbox((left, top), label, font=font)
        draw.rectangle(box, fill=color)
        draw.text((left, top), label, fill="white", font=font)
    return image


def output_stem(path: Path, used: set) -> str:
    """The page's file stem, with -2, -3, ... when another page already took it."""
    stem, number = path.stem, 1
    while stem in used:
        number += 1
        stem = f"{path.stem}-{number}"
    used.add(stem)
    return stem


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m serving.recognize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("pages", nargs="+", metavar="PAGE_IMAGE", help="PNG/JPEG/GIF/BMP pages")
    parser.add_argument("--out", required=True, type=Path, help="where the PNGs and XML go")
    parser.add_argument(
        "--models",
        default=DEFAULT_SERVING_BASE,
        help=f"serving base holding line_detector/ and lines/ ({DEFAULT_SERVING_BASE})",
    )
    parser.add_argument("--detector-version", type=int, help="default: the newest")
    parser.add_argument("--lines-version", type=int, help="default: the newest")
    parser.add_argument(
        "--server", metavar="URL", help="use the models served at this REST URL instead"
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    quiet(args.verbose)
    from tqdm import tqdm

    from data.pagexml_writer import write_page
    from serving import paragraph

    try:
        if args.server:
            recognizer = paragraph.over_rest(args.server, args.detector_version, args.lines_version)
        else:
            recognizer = paragraph.in_process(
                args.models, args.detector_version, args.lines_version
            )
        args.out.mkdir(parents=True, exist_ok=True)
    except (PredictionError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed, used = 0, set[str]()
    pages = tqdm(
        args.pages, desc="pages", unit="page", disable=len(args.pages) < 2, file=sys.stderr
    )
    for name in pages:
        path = Path(name)
        try:
            page = recognizer.recognize(path)
        except (PredictionError, ServingError) as e:
            message = str(e) if name in str(e) else f"{name}: {e}"
            tqdm.write(f"error: {message}", file=sys.stderr)
            failed += 1
            continue
        stem = output_stem(path, used)
        draw_regions(path, page).save(args.out / f"{stem}.png")
        write_page(
            args.out / f"{stem}.xml", path.name, page.width, page.height, page.written_lines()
        )
        tqdm.write(f"== {name} ({len(page.lines)} lines) ==\n{page.text}")
    if failed:
        print(f"{failed} of {len(args.pages)} pages could not be read", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
