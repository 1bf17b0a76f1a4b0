"""The baseline step copies the newest pushed version into its Model artifact (where the Evaluator
loads it), and outputs an empty one before the first push, which the Evaluator then ignores."""

from types import SimpleNamespace

from components.evaluator import holds_model
from components.latest_pushed_model import copy_newest_version


def _push(base, version: int, content: bytes) -> None:
    directory = base / str(version)
    (directory / "variables").mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(content)
    (directory / "variables" / "variables.index").write_bytes(content)


def test_the_newest_version_is_copied_where_the_evaluator_loads_it(tmp_path):
    push = tmp_path / "serving" / "characters"
    _push(push, 3, b"three")
    _push(push, 12, b"twelve")  # newest by number, not by name
    (push / "tmp-13").mkdir()  # a push in progress is not a version
    uri = tmp_path / "model"
    assert copy_newest_version(str(push), str(uri)) == (str(push / "12"), "")
    assert (uri / "Format-Serving" / "saved_model.pb").read_bytes() == b"twelve"
    assert (uri / "Format-Serving" / "variables" / "variables.index").read_bytes() == b"twelve"
    assert holds_model(SimpleNamespace(uri=str(uri)))


def test_nothing_pushed_gives_an_empty_model_that_is_no_baseline(tmp_path):
    uri = tmp_path / "model"
    assert copy_newest_version(str(tmp_path / "serving" / "characters"), str(uri)) == ("", "")
    assert uri.is_dir() and not any(uri.iterdir())
    assert not holds_model(SimpleNamespace(uri=str(uri)))


def _record_input_shape(version_dir, shape) -> None:
    """What trainer.warm_start.save_weights records beside an exported model."""
    import io
    import json

    import numpy as np

    from trainer.warm_start import INPUT_SHAPE, WARM_START_FILE

    buffer = io.BytesIO()
    info = {"charset": "ab", "network": "n", "network_args": {}, INPUT_SHAPE: shape}
    np.savez(buffer, w0000=np.zeros(1), __info__=np.array(json.dumps(info)))
    path = version_dir / WARM_START_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(buffer.getvalue())


def test_a_newest_version_of_another_input_shape_is_no_baseline(tmp_path):
    push = tmp_path / "serving" / "line_detector"
    _push(push, 5, b"five")
    _record_input_shape(push / "5", [256, 256, 1])
    uri = tmp_path / "model"
    copied, reason = copy_newest_version(str(push), str(uri), "[128, 128, 1]")
    assert copied == "" and "[256, 256, 1]" in reason and "[128, 128, 1]" in reason
    assert not holds_model(SimpleNamespace(uri=str(uri)))
    same = tmp_path / "same"
    assert copy_newest_version(str(push), str(same), "[256, 256, 1]") == (str(push / "5"), "")
    assert holds_model(SimpleNamespace(uri=str(same)))
