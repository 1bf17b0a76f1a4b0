"""The one data location rule: explicit, then the environment variable, then ../shared/data,
then the embedded sample (or an error naming every place looked at)."""

import pytest

from data import locations
from data.errors import DatasetError


@pytest.fixture
def places(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setattr(locations, "SHARED_DATA", shared)
    monkeypatch.delenv("TEST_DATA_DIR", raising=False)
    dirs = {name: tmp_path / name for name in ("explicit", "env", "sample")}
    for path in dirs.values():
        path.mkdir()
    (shared / "set").mkdir(parents=True)
    return dirs, shared


def find(**kwargs):
    return locations.locate(kwargs.pop("explicit", None), "TEST_DATA_DIR", "set", **kwargs)


def test_explicit_location_wins(places, monkeypatch):
    dirs, _ = places
    monkeypatch.setenv("TEST_DATA_DIR", str(dirs["env"]))
    assert find(explicit=str(dirs["explicit"]), sample=dirs["sample"]) == (
        dirs["explicit"],
        "given",
    )


def test_environment_variable_comes_second(places, monkeypatch):
    dirs, _ = places
    monkeypatch.setenv("TEST_DATA_DIR", str(dirs["env"]))
    assert find(sample=dirs["sample"]) == (dirs["env"], "$TEST_DATA_DIR")


def test_shared_data_folder_comes_third(places):
    dirs, shared = places
    path, how = find(sample=dirs["sample"])
    assert path == shared / "set" and str(shared) in how


def test_sample_comes_last_and_says_so(places):
    dirs, shared = places
    (shared / "set").rmdir()
    assert find(sample=dirs["sample"]) == (dirs["sample"], "the embedded sample")


def test_nothing_found_names_every_place(places):
    _, shared = places
    (shared / "set").rmdir()
    with pytest.raises(DatasetError) as error:
        find(what="test folder")
    assert "$TEST_DATA_DIR" in str(error.value) and str(shared / "set") in str(error.value)


def test_a_given_location_that_does_not_exist_is_an_error(places, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="missing.*no such file or directory"):
        find()
