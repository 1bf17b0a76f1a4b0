"""A run of the CLI as the README shows it (no make, no environment variables) prints its own
progress and result and nothing of the frameworks' warnings; the data location is said first."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"network": "mlp", "train_args": {"epochs": 2}}
FRAMEWORK_NOISE = re.compile(
    r"warn|^[IWE]\d{4} |^\S+ \S+: [IWE] |tensorflow/|Traceback", re.I | re.M
)


def test_run_is_quiet_and_says_where_its_data_is_and_which_epoch_it_kept(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "TF_CPP_MIN_LOG_LEVEL")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.run_experiment",
            json.dumps(CONFIG),
            "--root",
            str(tmp_path),
            "--data-dir",
            str(REPO / "data" / "sample" / "emnist"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not FRAMEWORK_NOISE.search(result.stderr), result.stderr[:2000]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("EmnistDataset: EMNIST from ") and "synthetic" in lines[0]
    assert len([line for line in lines if "val_accuracy" in line and "loss" in line]) == 2
    assert re.search(r"^kept epoch [12]: best val_accuracy \d\.\d{4}$", result.stdout, re.M)
    assert any(line.startswith("Eval: ") for line in lines)
