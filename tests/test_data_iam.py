"""IAM reader on fixture trees in IAM's exact layout (its download: tests/test_data_download.py)."""

import numpy as np
import pytest
from line_fixtures import INK, write_iam

from data.errors import DatasetError
from data.features import EVAL_SPLIT, TRAIN_SPLIT
from data.iam import official_split, read_iam

FORMS = {
    "a01-000u": (
        "000",
        [
            ("a01-000u-00", (10, 10, 50, 20), "A|MOVE|to|stop|.", "A MOVE to stop."),
            ("a01-000u-01", (10, 40, 80, 25), "Mr.|Gaitskell", "Mr. Gaitskell"),
        ],
    ),
    "r06-011": ("551", [("r06-011-00", (20, 100, 60, 30), "&quot;|Yes|&quot;", '"Yes"')]),
}


@pytest.mark.parametrize("line_images", [True, False])
def test_lines_from_line_images_or_cropped_from_forms(tmp_path, line_images):
    write_iam(tmp_path, FORMS, line_images=line_images)
    records = list(read_iam(tmp_path))
    assert [(r.line_id, r.text, r.writer, r.page, r.document) for r in records] == [
        ("a01-000u-00", "A MOVE to stop.", "000", "a01-000u", "a01-000u"),
        ("a01-000u-01", "Mr. Gaitskell", "000", "a01-000u", "a01-000u"),
        ("r06-011-00", '"Yes"', "551", "r06-011", "r06-011"),
    ]
    assert [r.image.shape for r in records] == [(20, 50), (25, 80), (30, 60)]
    assert all(
        r.image.dtype == np.uint8 and (r.image == INK).all() and r.source == "iam" for r in records
    )


def test_without_form_xml_text_is_the_words_and_writer_unknown(tmp_path):
    write_iam(tmp_path, FORMS)
    (tmp_path / "xml" / "a01-000u.xml").unlink()
    first = next(read_iam(tmp_path))
    assert (first.text, first.writer) == ("A MOVE to stop .", "")


def test_box_outside_the_form_is_a_counted_skip(tmp_path):
    forms = {"a01-000u": ("000", [("a01-000u-00", (900, 900, 5, 5), "far", "far")])}
    write_iam(tmp_path, forms, line_images=False)
    (skip,) = read_iam(tmp_path)
    assert (
        skip.line_id == "a01-000u-00"
        and "outside the form" in skip.reason
        and "lines.txt:3" in skip.file
    )


def test_official_split_train_includes_validation_sets(tmp_path):
    write_iam(
        tmp_path,
        FORMS,
        splits={
            "trainset.txt": ["a01-000u-00"],
            "validationset2.txt": ["a01-000u-01"],
            "testset.txt": ["r06-011-00"],
        },
    )
    assert official_split(tmp_path) == {
        "a01-000u-00": TRAIN_SPLIT,
        "a01-000u-01": TRAIN_SPLIT,
        "r06-011-00": EVAL_SPLIT,
    }
    (tmp_path / "task" / "testset.txt").unlink()
    with pytest.raises(DatasetError, match="split file testset.txt not found"):
        official_split(tmp_path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetError, match="no IAM pages: .*ascii/lines.txt does not exist"):
        list(read_iam(tmp_path))
    write_iam(tmp_path, FORMS, line_images=False)
    (tmp_path / "forms" / "r06-011.png").unlink()
    with pytest.raises(DatasetError, match="image .*forms/r06-011.png does not exist"):
        list(read_iam(tmp_path))
