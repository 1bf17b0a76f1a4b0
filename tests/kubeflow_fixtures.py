"""What the Kubeflow runner's tests share: its required flags, and running it on a config it
must refuse."""

import pytest

from kubeflow.runner import main

REQUIRED_FLAGS = ["--pipeline-root", "r", "--examples-dir", "e", "--serving-dir", "s"]


def refused(config: str, output, capsys, *flags: str) -> str:
    """kubeflow.runner's stderr for `config` (and `flags`), asserting that it exits with 2
    before writing `output`."""
    with pytest.raises(SystemExit) as exited:
        main([config, "--output", str(output), *REQUIRED_FLAGS, *flags])
    assert exited.value.code == 2
    assert not output.exists()
    return capsys.readouterr().err
