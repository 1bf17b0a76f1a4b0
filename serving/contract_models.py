"""The models the serving contract tests run against, in the push layout, with their config.

Untrained, tiny CTC line models (their predictions are meaningless; the tests check the serving
contract, not accuracy), written as

    DIR/lines/1, DIR/lines/2     labels stable -> 1, canary -> 2
    DIR/reload/1, DIR/reload/2   the hot-reload test adds versions here
    DIR/models.config            ModelServerConfig with base paths under /models

To run the contract tests against a real TensorFlow Serving (see README.md, "Serving"):

    python -m serving.contract_models /tmp/contract_models
    docker run --rm -p 8500:8500 -p 8501:8501 -v /tmp/contract_models:/models \\
        tensorflow/serving:2.16.1 --model_config_file=/models/models.config \\
        --allow_version_labels_for_unavailable_models=true --file_system_poll_wait_seconds=1
    TF_SERVING_REST=http://127.0.0.1:8501 TF_SERVING_GRPC=127.0.0.1:8500 \\
        TF_SERVING_MODELS_DIR=/tmp/contract_models pytest tests/test_serving_contract.py
"""

import atexit
import functools
import shutil
import sys
import tempfile
from pathlib import Path

from common.push_layout import LINES_MODEL

CONTRACT_MODELS = {LINES_MODEL: (1, 2), "reload": (1, 2)}
LABELS = {LINES_MODEL: {"stable": 1, "canary": 2}}
NUM_VERSIONS = 2  # the version policy: latest {num_versions: 2}
LINE_CONFIG = {
    "dataset": "EmnistLinesDataset",
    "model": "LineModelCtc",
    "dataset_args": {"max_length": 4},
    "network_args": {"lstm_dim": 16, "conv_dim": 8},
}


def export_untrained_line_model(path) -> Path:
    """Builds the tiny line model above (random weights) and exports it to `path`."""
    from trainer.export import export_untrained_line_model as export

    return Path(export(LINE_CONFIG, path))


@functools.cache
def template_model() -> Path:
    """One exported model per process (removed at exit), copied for every version."""
    directory = Path(tempfile.mkdtemp(prefix="contract-model-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return export_untrained_line_model(directory / "model")


def model_config_text(root: str = "/models") -> str:
    blocks = []
    for name in CONTRACT_MODELS:
        labels = "".join(
            f'    version_labels {{ key: "{label}" value: {version} }}\n'
            for label, version in LABELS.get(name, {}).items()
        )
        blocks.append(
            "  config {\n"
            f'    name: "{name}"\n'
            f'    base_path: "{root}/{name}"\n'
            '    model_platform: "tensorflow"\n'
            f"    model_version_policy {{ latest {{ num_versions: {NUM_VERSIONS} }} }}\n"
            f"{labels}"
            "  }\n"
        )
    return "model_config_list {\n" + "".join(blocks) + "}\n"


def write_contract_models(root) -> Path:
    """Writes the models and models.config under `root`; returns the config's path."""
    root = Path(root)
    for name, versions in CONTRACT_MODELS.items():
        for version in versions:
            target = root / name / str(version)
            if not (target / "saved_model.pb").exists():
                shutil.copytree(template_model(), target, dirs_exist_ok=True)
    config = root / "models.config"
    config.write_text(model_config_text())
    return config


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m serving.contract_models DIR")
    print(write_contract_models(sys.argv[1]))
