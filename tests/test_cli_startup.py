"""The command lines answer `--help` and reject a bad config before TensorFlow or TFX load
(importing them costs tens of seconds), in a fresh interpreter as a user runs them."""

import subprocess
import sys

import pytest
from kubeflow_fixtures import REQUIRED_FLAGS

HEAVY = ("tensorflow", "tfx", "keras", "apache_beam")
PROBE = """
import sys
from {module} import main
try:
    code = main({argv!r})
except SystemExit as exit:
    code = exit.code
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print("LOADED", loaded, "CODE", code)
"""


def run_probe(module: str, argv: list) -> subprocess.CompletedProcess:
    code = PROBE.format(module=module, argv=argv, heavy=HEAVY)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["training.run_experiment", "kubeflow.runner"])
def test_help_loads_nothing_heavy(module):
    result = run_probe(module, ["--help"])
    assert "usage:" in result.stdout
    assert "LOADED [] CODE 0" in result.stdout, result.stdout + result.stderr


def test_bad_config_is_rejected_before_tensorflow_loads():
    result = run_probe("training.run_experiment", ['{"dataset": "X"}'])
    assert "error: dataset: unknown value 'X'" in result.stderr
    assert "LOADED [] CODE 2" in result.stdout, result.stdout + result.stderr


def test_kubeflow_bad_config_is_rejected_before_tensorflow_loads():
    result = run_probe("kubeflow.runner", ['{"network": "resnet"}', *REQUIRED_FLAGS])
    assert "network: unknown value 'resnet'" in result.stderr
    assert "LOADED [] CODE 2" in result.stdout, result.stdout + result.stderr
