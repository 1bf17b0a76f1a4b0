"""Page data for the line detector: the converter (data.pages) on constructed PAGE-XML, ALTO and
IAM folders, synthetic pages (transform.page_synthesis), the page datasets, and their Transform
(transform.page_preprocessing) run in process as TFX's Transform runs it."""

import functools
import io
import os
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from line_fixtures import (
    INK,
    PAPER,
    TEXT_PAGES,
    page_image,
    write_iam,
    write_pagexml,
    write_text_pages,
)
from PIL import Image

from common.pages import BACKGROUND, EVEN_LINE, MASK_KEY, ODD_LINE
from data.features import (
    EVAL_SPLIT,
    IMAGE_KEY,
    LABEL_KEY,
    LINE_COUNT_KEY,
    PAGE_KEY,
    SOURCE_KEY,
    TEXT_KEY,
    TRAIN_SPLIT,
    WRITER_KEY,
)
from data.page_masks import box_points
from data.pages import PageRecord, convert, main, page_example
from data.sample import SAMPLE_DIR
from data.sentences import load_sentences
from data.tfrecords import read_examples, read_split
from data.xml_pages import PageLine
from trainer.datasets import DATASETS
from transform.line_synthesis import GlyphBank
from transform.page_preprocessing import decode_masks, decode_pages
from transform.page_synthesis import synthetic_pages

REPO = Path(__file__).resolve().parents[1]
SIZE = 60  # mask size of the constructed pages (200 x 120 pixels)


def _examples(out, split) -> dict:
    """{page id: {feature: value}} of a written split (masks and images decoded)."""
    pages = {}
    for features in read_examples(out, split, "page examples"):
        values = {}
        for key, feature in features.items():
            values[key] = (
                feature.int64_list.value[0]
                if feature.int64_list.value
                else feature.bytes_list.value[0]
            )
        for key in (IMAGE_KEY, MASK_KEY):
            values[key] = np.asarray(Image.open(io.BytesIO(values[key])))
        pages[values[PAGE_KEY].decode()] = values
    return pages


def _bars_page(folder: Path, name: str, bars: list, extra_lines=()) -> None:
    """A PAGE-XML page of ink bars (left, top, right, bottom), one line each, texts 'a', 'b', ..."""
    page_image(folder / f"{name}.png", bars=bars)
    lines = [
        (f"l{i}", f"{x},{t} {r - 1},{t} {r - 1},{b - 1} {x},{b - 1}", chr(ord("a") + i))
        for i, (x, t, r, b) in enumerate(bars)
    ]
    write_pagexml(folder / f"{name}.xml", f"{name}.png", [("r1", [*lines, *extra_lines])])


def test_pagexml_pages_masks_texts_split_and_skips(tmp_path):
    src = tmp_path / "src"
    bars = [(20, 10, 180, 30), (20, 40, 180, 60), (20, 70, 180, 90)]  # 200 x 120 pages
    broken = [("bad", "1,2 3", "x"), ("off", "500,500 600,500 600,600", "y")]
    _bars_page(src, "page 0", bars, broken)
    for p in (1, 2, 3):
        _bars_page(src, f"page {p}", bars[:2])
    write_pagexml(src / "empty.xml", "page 1.png", [("r1", [])])
    report = convert(
        "pagexml", src, tmp_path / "out", SIZE, 0.25, eval_pages=["page 1"], progress=False
    )

    train, evaluation = (_examples(tmp_path / "out", s) for s in (TRAIN_SPLIT, EVAL_SPLIT))
    assert sorted(evaluation) == ["page 1"] and sorted(train) == ["page 0", "page 2", "page 3"]
    page = train["page 0"]
    assert page[TEXT_KEY] == b"a\nb\nc" and page[LINE_COUNT_KEY] == 3
    assert page[SOURCE_KEY] == b"pagexml"
    mask = page[MASK_KEY]
    assert mask.shape == (SIZE, SIZE)
    # bars at rows 10-29, 40-59, 70-89 of 120 -> rows 5-14, 20-29, 35-44 of 60
    assert [mask[row, 30] for row in (10, 25, 40, 55)] == [ODD_LINE, EVEN_LINE, ODD_LINE, 0]
    assert page[IMAGE_KEY].shape == (120, 200)  # as scanned: not resized, dark ink on paper
    assert page[IMAGE_KEY][20, 100] == INK and page[IMAGE_KEY][100, 100] == PAPER
    assert report["skipped"] == {
        "not a polygon: points '1,2 3'": 1,
        "polygon outside the page": 1,
        "page without lines": 1,
    }
    assert report["splits"][TRAIN_SPLIT] == {
        "lines": 7,
        "pages": 3,
        "characters": 7,
        "charset": "abc",
        "line_pixels_lost_to_overlaps": 0.0,
        "lines_without_pixels": 0,
    }


def test_page_example_counts_overlapping_pixels_and_swallowed_lines():
    lines = [
        PageLine("a", "x", box_points(10, 10, 80, 40)),
        PageLine("b", "y", box_points(20, 20, 20, 10)),
    ]
    record = PageRecord(np.full((100, 100), PAPER, np.uint8), lines, "pagexml", "d", "p")
    example = page_example(record, 100)
    assert (example.text, example.lines, example.line_pixels) == ("x\ny", 2, 80 * 40)
    assert (example.kept_pixels, example.lines_without_pixels) == (80 * 40 - 20 * 10, 1)


@pytest.mark.parametrize("fmt", ["pagexml", "alto", "iam"])
def test_every_format_gives_the_pages_text_and_alternating_lines(tmp_path, fmt):
    src = write_text_pages(tmp_path / "src", fmt)
    convert(fmt, src, tmp_path / "out", 64, 0.25, progress=False)
    pages = {**_examples(tmp_path / "out", TRAIN_SPLIT), **_examples(tmp_path / "out", EVAL_SPLIT)}
    assert sorted(p[TEXT_KEY].decode() for p in pages.values()) == sorted(
        "\n".join(texts) for texts in TEXT_PAGES
    )
    for page in pages.values():
        assert page[LINE_COUNT_KEY] == 2
        assert set(np.unique(page[MASK_KEY])) == {BACKGROUND, ODD_LINE, EVEN_LINE}
    if fmt == "iam":  # the official task split: the last form's lines are the test set
        assert list(_examples(tmp_path / "out", EVAL_SPLIT)) == ["a03-003"]


def test_iam_forms_become_paragraph_crops(tmp_path):
    """The form is cropped to its lines' boxes plus a margin: the printed header is left out."""
    lines = [
        ("a01-000-00", (40, 120, 200, 20), "A|line", "A line"),
        ("a01-000-01", (40, 150, 150, 20), "Two", "Two"),
    ]
    outside = [("b01-000-00", (900, 120, 50, 20), "Far", "Far")]
    write_iam(
        tmp_path / "iam",
        {"a01-000": ("007", lines), "b01-000": ("008", outside)},
        line_images=False,
        splits={"trainset.txt": ["a01-000-00", "a01-000-01", "b01-000-00"]},
    )
    report = convert("iam", tmp_path / "iam", tmp_path / "out", 32, progress=False)
    assert report["skipped"] == {"line boxes outside the form": 1}
    (page,) = _examples(tmp_path / "out", TRAIN_SPLIT).values()
    assert page[IMAGE_KEY].shape == (170 + 16 - (120 - 16), 240 + 16 - (40 - 16))
    assert page[TEXT_KEY] == b"A line\nTwo" and page[WRITER_KEY] == b"007"


def test_large_pages_are_stored_scaled_down_masks_stay_at_page_size(tmp_path):
    src = tmp_path / "src"
    _bars_page(src, "p", [(20, 10, 180, 30)])
    convert("pagexml", src, tmp_path / "out", 32, 0.0, max_side=100, progress=False)
    (page,) = _examples(tmp_path / "out", TRAIN_SPLIT).values()
    assert page[IMAGE_KEY].shape == (60, 100) and page[MASK_KEY].shape == (32, 32)


@pytest.mark.parametrize(
    "case, message",
    [
        ("malformed", "{src}/bad (1).xml: malformed XML: "),
        ("missing image", "{src}/p.xml: image 'p.png' not found"),
        ("no lines", "no pages with lines in {src} (1 skipped)"),
        ("page size", "need 8 <= page size <= max side, got 4 and 1024"),
    ],
)
def test_cli_errors_name_the_file_and_exit_2(tmp_path, capsys, case, message):
    src = tmp_path / "src"
    src.mkdir()
    if case == "malformed":
        (src / "bad (1).xml").write_text("<PcGts><Page>")
    elif case == "missing image":
        write_pagexml(src / "p.xml", "p.png", [("r", [("l", "0,0 9,0 9,9", "x")])])
    else:
        page_image(src / "p.png")
        write_pagexml(src / "p.xml", "p.png", [("r", [])])
    argv = ["--format", "pagexml", "--source", str(src), "--out", str(tmp_path / "out")]
    if case == "page size":
        _bars_page(src, "q", [(20, 10, 180, 30)])
        argv += ["--page-size", "4"]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + message.format(src=src)) and "Traceback" not in err


@functools.cache
def _sample_bank(split: str) -> GlyphBank:
    images, labels, _ = read_split(SAMPLE_DIR, split)
    return GlyphBank(images, labels)


def test_synthetic_pages_are_deterministic_and_boxed():
    sentences = load_sentences("sample")
    draw = functools.partial(
        synthetic_pages, sentences, _sample_bank(TRAIN_SPLIT), 3, max_length=10, max_lines=5
    )
    pages, again, other = list(draw(seed=1)), list(draw(seed=1)), list(draw(seed=2))
    assert all((a.image == b.image).all() for a, b in zip(pages, again))
    assert any(
        a.image.shape != b.image.shape or (a.image != b.image).any() for a, b in zip(pages, other)
    )
    for page in pages:
        assert page.source == "emnist" and 1 <= len(page.lines) <= 5
        assert page.image.dtype == np.uint8 and np.median(page.image) == 255  # white paper
        height, width = page.image.shape
        for line in page.lines:
            assert 0 < len(line.text) <= 10
            (left, top), _, (right, bottom), _ = line.points
            assert 0 <= left < right < width and 0 <= top < bottom < height
            box = page.image[int(top) : int(bottom) + 1, int(left) : int(right) + 1]
            assert box.min() < 128  # ink inside the box
        example, text, *_ = page_example(page, 64)
        assert text.split("\n") == [line.text for line in page.lines]
    mask = np.asarray(
        Image.open(
            io.BytesIO(
                tf.train.Example.FromString(example).features.feature[MASK_KEY].bytes_list.value[0]
            )
        )
    )
    assert mask.shape == (64, 64) and ODD_LINE in mask


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_pages_stretches_inverts_and_composites_transparency():
    page = np.full((50, 100), 230, np.uint8)
    page[10:20, 50:90] = 30  # a dark bar in the right half of a wide page
    rgba = np.zeros((50, 100, 4), np.uint8)  # transparent paper, opaque black ink
    rgba[10:20, 50:90, 3] = 255
    images = decode_pages(tf.constant([_png(page), _png(rgba)]), 20).numpy()
    assert images.shape == (2, 20, 20, 1) and images.dtype == np.float32
    for image in images[..., 0]:
        assert image[5:7, 11:17].min() > 0.9  # the bar: rows 4-7, columns 10-17 of 20
        assert image[12:, :].max() < 0.05 and image[:, :9].max() < 0.05  # paper is 0


def test_decode_masks_refuses_another_size_or_unknown_classes():
    mask = np.zeros((8, 8), np.uint8)
    assert decode_masks(tf.constant([_png(mask)]), 8).numpy().dtype == np.int64
    with pytest.raises(tf.errors.InvalidArgumentError, match="prepared for another page_size"):
        decode_masks(tf.constant([_png(mask)]), 16)
    with pytest.raises(tf.errors.InvalidArgumentError, match="class outside"):
        decode_masks(tf.constant([_png(mask + 3)]), 8)


def test_dataset_arguments_are_checked():
    dataset = DATASETS["PageXmlPagesDataset"]
    with pytest.raises(ValueError, match="page_size must be in"):
        dataset.validate({**dataset.args, "page_size": 16})
    with pytest.raises(ValueError, match="eval_fraction"):
        dataset.validate({**dataset.args, "eval_fraction": 1.0})
    assert dataset.image_shape({"page_size": 128}) == (128, 128, 1)


def test_emnist_pages_through_transform(tmp_path):
    """EmnistPagesDataset on the embedded sample, its preprocessing_fn run by tf.Transform on
    Beam: the page is ink 1 on 0 at S x S where its mask says line, the label is the mask."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
    from tfx.utils import io_utils

    from pipeline.tasks import SCHEMA_DIR
    from transform.page_preprocessing import preprocessing_fn

    dataset = DATASETS["EmnistPagesDataset"]
    args = {**dataset.args, "page_size": 64, "num_train": 4, "num_eval": 2, "max_length": 12}
    config = types.SimpleNamespace(dataset_args=args)
    examples_dir, resources = dataset.prepare(config, None, str(tmp_path))
    assert (examples_dir, resources) == (dataset.prepare(config, None, str(tmp_path))[0], {})
    schema = io_utils.parse_pbtxt_file(
        os.path.join(SCHEMA_DIR, dataset.schema, "schema.pbtxt"), schema_pb2.Schema()
    )
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    files = tf.io.gfile.glob(f"{examples_dir}/{TRAIN_SPLIT}/*")
    raw = [
        {key: value.numpy() for key, value in tf.io.parse_single_example(record, spec).items()}
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]
    assert len(raw) == 4
    fn = functools.partial(preprocessing_fn, custom_config=dataset.transform_config(config, {}))
    out = str(tmp_path / "transform_fn")
    with beam.Pipeline(argv=["--runner=FnApiRunner"]) as pipeline:
        with tft_beam.Context(temp_dir=str(tmp_path / "tmp"), force_tf_compat_v1=False):
            instances = pipeline | beam.Create(raw)
            metadata = dataset_metadata.DatasetMetadata(schema)
            transform_fn = (instances, metadata) | tft_beam.AnalyzeDataset(fn)
            _ = transform_fn | tft_beam.WriteTransformFn(out)
    batch = {key: tf.constant(np.stack([r[key] for r in raw])) for key in raw[0]}
    features = tft.TFTransformOutput(out).transform_features_layer()(batch)
    images, labels = features[IMAGE_KEY].numpy(), features[LABEL_KEY].numpy()
    assert images.shape == (4, 64, 64, 1) and labels.shape == (4, 64, 64)
    assert labels.dtype == np.int64 and images.min() >= 0 and images.max() <= 1
    masks = [np.asarray(Image.open(io.BytesIO(r[MASK_KEY][0]))) for r in raw]
    assert (labels == np.stack(masks)).all()
    lines = labels > 0
    assert images[..., 0][~lines].mean() < 0.05 and images[..., 0][lines].mean() > 0.15
    # most ink is on line pixels (the rest: overlaps, which are background, and box edges)
    assert (images[..., 0][lines] > 0.5).sum() > 0.75 * (images[..., 0] > 0.5).sum()

    image, text = dataset.eval_example(config, examples_dir, resources)
    assert image.dtype == np.uint8 and image.ndim == 2 and np.median(image) == 255  # as scanned
    assert text == raw_eval_text(examples_dir)


def raw_eval_text(examples_dir) -> str:
    return (
        next(read_examples(examples_dir, EVAL_SPLIT, "pages"))[TEXT_KEY]
        .bytes_list.value[0]
        .decode()
    )


@pytest.mark.real_data
def test_real_hooker_pages(tmp_path):
    hooker = Path(os.environ.get("HOOKER_DIR", REPO.parent / "shared" / "data" / "htr" / "hooker"))
    if not hooker.is_dir():
        pytest.skip(f"the Hooker PAGE-XML pages are not at {hooker} (set HOOKER_DIR)")
    names = ["JDH_2_16_144_001", "JDH_2_16_186_001 (1)", "JDH_2_16_40_001"]
    for name in names:
        for suffix in (".xml", ".jpg"):
            shutil.copy(hooker / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    report = convert("pagexml", tmp_path, tmp_path / "out", 256, 0.0, progress=False)
    pages = _examples(tmp_path / "out", TRAIN_SPLIT)
    assert sorted(pages) == sorted(names)
    assert set(report["skipped"]) <= {"polygon outside the page"}  # a few in JDH_2_16_40_001
    for name, page in pages.items():
        skipped = sum(Path(file).stem == name for file, _, _ in report["skipped_lines"])
        text = (tmp_path / f"{name}.xml").read_text(encoding="utf-8")
        text_lines = text.count("<TextLine ") - skipped
        assert page[LINE_COUNT_KEY] == text_lines
        counts = np.bincount(page[MASK_KEY].ravel(), minlength=3)
        assert (
            counts[ODD_LINE] > 0 and counts[EVEN_LINE] > 0 and counts[BACKGROUND] > counts[1:].sum()
        )
        assert 0 < len(page[TEXT_KEY].decode().split("\n")) <= text_lines
