"""Light modules stay light: importing them does not load TensorFlow, Keras or TFX.

Each import runs in a fresh interpreter, so what other tests imported does not count. The REST
client, the app, the image and error helpers and the shared names must not load TensorFlow (the
gRPC client does, through TF Serving's protos, and is imported only when it is used).
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "tfx")
LIGHT_MODULES = [
    "serving.client",
    "serving.app",
    "serving.app_requests",
    "serving.asgi",
    "serving.errors",
    "serving.images",
    "evaluation.text_metrics",
    "common.push_layout",
    "common.signatures",
    "benchmarks.load_test",
    "serving.page_regions",
    "data.pagexml_writer",
    "labeling.server",
    "labeling.project",
    "labeling.export",
    "labeling.regions",
]


def loaded_packages(module: str, packages=HEAVY) -> list:
    """Which of `packages` (the package itself or any submodule) are in sys.modules after
    `import module` in a fresh interpreter."""
    code = (
        f"import json, sys, {module}\n"
        f"packages = {list(packages)!r}\n"
        "print(json.dumps(sorted({p for p in packages for name in sys.modules\n"
        "                         if name == p or name.startswith(p + '.')})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_import_loads_no_tensorflow_keras_or_tfx(module):
    assert loaded_packages(module) == []


def test_the_check_sees_tensorflow_where_it_is_loaded():
    """The gRPC client imports TF Serving's protos, hence TensorFlow: the probe does see it."""
    assert "tensorflow" in loaded_packages("serving.grpc_client")
