"""Tiny pages of "handwriting" in PAGE-XML, ALTO and IAM layouts, written by the tests.

A page is light paper (PAPER) with a dark ink bar (INK) per line, so a crop shows whether it
came from the right place; real data may not be committed (IAM may not be redistributed).
"""

from pathlib import Path

import numpy as np
from PIL import Image

PAPER, INK = 240, 20
PAGE_2013 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"
PAGE_2019 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_NAMESPACES = {
    2: "http://www.loc.gov/standards/alto/ns-v2#",
    3: "http://www.loc.gov/standards/alto/ns-v3#",
    4: "http://www.loc.gov/standards/alto/ns-v4#",
}


def page_image(path: Path, size=(200, 120), bars=(), dpi=None) -> np.ndarray:
    """Write a page of `size` (w, h) with ink bars [(left, top, right, bottom)] and return it."""
    pixels = np.full(size[::-1], PAPER, dtype=np.uint8)
    for left, top, right, bottom in bars:
        pixels[top:bottom, left:right] = INK
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **({"dpi": dpi} if dpi else {}))
    return pixels


def write_pagexml(
    path: Path, image_name: str, regions, order=None, namespace=PAGE_2013, size=(200, 120)
):
    """regions: [(region id, [(line id, "x,y x,y ...", text or list of texts or None)])]."""
    ordering = (
        ""
        if order is None
        else (
            "<ReadingOrder><OrderedGroup id='g'>"
            + "".join(
                f"<RegionRefIndexed index='{i}' regionRef='{r}'/>"
                for i, r in reversed(list(enumerate(order)))
            )
            + "</OrderedGroup></ReadingOrder>"
        )
    )
    body = ""
    for region_id, lines in regions:
        body += f"<TextRegion id='{region_id}'><Coords points='0,0 1,0 1,1'/>"
        for line_id, points, texts in lines:
            texts = [] if texts is None else [texts] if isinstance(texts, str) else texts
            equivs = "".join(
                f"<TextEquiv index='{i}'><Unicode>{t}</Unicode></TextEquiv>"
                for i, t in enumerate(texts)
            )
            body += (
                f"<TextLine id='{line_id}'><Coords points='{points}'/><Baseline points='{points.split()[0]}'/>"
                f"<Word id='{line_id}w'><TextEquiv><Unicode>WORD</Unicode></TextEquiv></Word>{equivs}</TextLine>"
            )
        body += "<TextEquiv><Unicode>REGION TEXT</Unicode></TextEquiv></TextRegion>"
    path.write_text(
        f"<?xml version='1.0' encoding='UTF-8'?><PcGts xmlns='{namespace}'><Metadata/>"
        f"<Page imageFilename='{image_name}' imageWidth='{size[0]}' imageHeight='{size[1]}'>"
        f"{ordering}{body}</Page></PcGts>",
        encoding="utf-8",
    )


def write_alto(path: Path, image_name: str, lines, version=4, unit="pixel", page_size=None):
    """lines: [(line id, (hpos, vpos, width, height), [words], polygon points or None)]."""
    body = ""
    for line_id, (x, y, w, h), words, polygon in lines:
        shape = f"<Shape><Polygon POINTS='{polygon}'/></Shape>" if polygon else ""
        strings = "<SP/>".join(f"<String CONTENT='{word}'/>" for word in words)
        body += f"<TextLine ID='{line_id}' HPOS='{x}' VPOS='{y}' WIDTH='{w}' HEIGHT='{h}'>{shape}{strings}</TextLine>"
    page_attributes = f" WIDTH='{page_size[0]}' HEIGHT='{page_size[1]}'" if page_size else ""
    path.write_text(
        f"<?xml version='1.0' encoding='UTF-8'?><alto xmlns='{ALTO_NAMESPACES[version]}'><Description>"
        f"<MeasurementUnit>{unit}</MeasurementUnit><sourceImageInformation><fileName>{image_name}</fileName>"
        f"</sourceImageInformation></Description><Layout><Page ID='p1'{page_attributes}><PrintSpace>"
        f"<TextBlock ID='b1'>{body}</TextBlock></PrintSpace></Page></Layout></alto>",
        encoding="utf-8",
    )


def write_iam(root: Path, forms, line_images=True, splits=None):
    """IAM's official layout. forms: {form id: (writer, [(line id, (x, y, w, h), "word|word", xml text)])};
    splits: {split file name: [line ids]} (default: first form's lines train, the rest test)."""
    rows = ["# IAM lines.txt (test fixture)", "#"]
    for form_id, (writer, lines) in forms.items():
        bars = [(x, y, x + w, y + h) for _, (x, y, w, h), _, _ in lines]
        form = page_image(root / "forms" / f"{form_id}.png", (300, 200), bars)
        xml_lines = "".join(
            f"<line id='{line_id}' text='{text}'/>" for line_id, _, _, text in lines
        )
        (root / "xml").mkdir(parents=True, exist_ok=True)
        (root / "xml" / f"{form_id}.xml").write_text(
            f"<?xml version='1.0'?><form id='{form_id}' writer-id='{writer}'><handwritten-part>{xml_lines}"
            "</handwritten-part></form>"
        )
        for line_id, (x, y, w, h), words, _ in lines:
            rows.append(f"{line_id} ok 154 3 {x} {y} {w} {h} {words}")
            if line_images:
                path = root / "lines" / form_id.split("-")[0] / form_id / f"{line_id}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(form[y : y + h, x : x + w]).save(path)
    (root / "ascii").mkdir(parents=True, exist_ok=True)
    (root / "ascii" / "lines.txt").write_text("\n".join(rows) + "\n")
    if splits is None:
        first, *rest = forms.values()
        splits = {
            "trainset.txt": [line[0] for line in first[1]],
            "testset.txt": [line[0] for _, lines in rest for line in lines],
        }
    (root / "task").mkdir(exist_ok=True)
    for name in ("trainset.txt", "validationset1.txt", "validationset2.txt", "testset.txt"):
        (root / "task" / name).write_text(
            "".join(f"{line_id}\n" for line_id in splits.get(name, []))
        )


TEXT_PAGES = [
    ["Hello world", "It's 9 a.m."],
    ["The quick fox", "jumps, again!"],
    ["A line (3)", "Last one."],
    ["More text", "and more"],
]


def write_text_pages(root: Path, fmt: str, pages=TEXT_PAGES) -> Path:
    """Pages whose lines are `pages`' texts drawn in a real font, dark on paper, as `fmt`
    ("pagexml", "alto" or "iam") lays them out: a folder any handwriting dataset reads."""
    from xml.sax.saxutils import escape

    from PIL import ImageDraw, ImageFont

    def attribute(text):  # the fixture writers quote attributes with '
        return escape(text, {"'": "&apos;"})

    font = ImageFont.load_default(size=18)
    root.mkdir(parents=True, exist_ok=True)
    forms = {}
    for p, texts in enumerate(pages):
        page = Image.new("L", (300, 40 * len(texts) + 10), PAPER)
        draw = ImageDraw.Draw(page)
        boxes = []
        for i, text in enumerate(texts):
            draw.text((10, 10 + 40 * i), text, fill=INK, font=font)
            boxes.append((5, 5 + 40 * i, 290, 35))  # x, y, w, h
        name = f"page {p} (scan).png"
        if fmt == "iam":
            form_id = f"a0{p}-00{p}"
            lines = [
                (f"{form_id}-0{i}", box, text.replace(" ", "|"), attribute(text))
                for i, (box, text) in enumerate(zip(boxes, texts))
            ]
            forms[form_id] = ("000", lines)
            (root / "forms").mkdir(exist_ok=True)
            page.save(root / "forms" / f"{form_id}.png")
            continue
        page.save(root / name)
        if fmt == "pagexml":
            polygons = [
                (f"l{i}", f"{x},{y} {x + w},{y} {x + w},{y + h} {x},{y + h}", text)
                for i, ((x, y, w, h), text) in enumerate(zip(boxes, texts))
            ]
            write_pagexml(root / f"page {p}.xml", name, [("r1", polygons)], size=page.size)
        else:
            lines = [
                (f"l{i}", box, [attribute(word) for word in text.split(" ")], None)
                for i, (box, text) in enumerate(zip(boxes, texts))
            ]
            write_alto(root / f"page {p}.xml", name, lines)
    if fmt == "iam":
        _write_iam_forms(root, forms)
    return root


def _write_iam_forms(root: Path, forms: dict) -> None:
    """IAM's layout around forms already saved under root/forms (lines cropped from them)."""
    rows = ["# IAM lines.txt (test fixture)", "#"]
    (root / "xml").mkdir(exist_ok=True)
    for form_id, (writer, lines) in forms.items():
        xml_lines = "".join(
            f"<line id='{line_id}' text='{text}'/>" for line_id, _, _, text in lines
        )
        (root / "xml" / f"{form_id}.xml").write_text(
            f"<?xml version='1.0'?><form id='{form_id}' writer-id='{writer}'><handwritten-part>"
            f"{xml_lines}</handwritten-part></form>"
        )
        rows += [
            f"{line_id} ok 154 3 {x} {y} {w} {h} {words}"
            for line_id, (x, y, w, h), words, _ in lines
        ]
    (root / "ascii").mkdir(exist_ok=True)
    (root / "ascii" / "lines.txt").write_text("\n".join(rows) + "\n")
    (root / "task").mkdir(exist_ok=True)
    ids = [line[0] for _, lines in forms.values() for line in lines]
    split = {"trainset.txt": ids[:-2], "testset.txt": ids[-2:]}
    for name in ("trainset.txt", "validationset1.txt", "validationset2.txt", "testset.txt"):
        (root / "task" / name).write_text(
            "".join(f"{line_id}\n" for line_id in split.get(name, []))
        )
