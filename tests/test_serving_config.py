"""The TF Serving deployment files in serving/: they parse as TF Serving's config messages and the
compose file runs the pinned image with them."""

from pathlib import Path

import pytest
import yaml

from serving.config_protos import (
    ConfigFileError,
    read_batching_parameters,
    read_model_server_config,
    read_monitoring_config,
)
from serving.local_server import ModelSource, sources_from_config

SERVING = Path(__file__).resolve().parents[1] / "serving"
CONFIG = SERVING / "config"


def test_models_config_serves_characters_lines_and_the_line_detector():
    config = read_model_server_config(CONFIG / "models.config")
    models = {model.name: model for model in config.model_config_list.config}
    assert sorted(models) == ["characters", "line_detector", "lines"]
    for name, model in models.items():
        assert model.base_path == f"/models/{name}"
        assert model.model_platform == "tensorflow"
        assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
        assert model.model_version_policy.latest.num_versions == 2
        labels = {} if name == "line_detector" else {"stable": 1, "canary": 2}
        assert dict(model.version_labels) == labels


def test_models_config_base_paths_map_to_the_push_directory(tmp_path):
    sources = sources_from_config(CONFIG / "models.config", tmp_path)
    assert sources == [
        ModelSource(
            "characters", tmp_path / "characters", ("latest", 2), (("canary", 2), ("stable", 1))
        ),
        ModelSource("lines", tmp_path / "lines", ("latest", 2), (("canary", 2), ("stable", 1))),
        ModelSource("line_detector", tmp_path / "line_detector", ("latest", 2), ()),
    ]


def test_batching_parameters():
    parameters = read_batching_parameters(CONFIG / "batching.config")
    assert parameters.DESCRIPTOR.full_name == "tensorflow.serving.BatchingParameters"
    assert parameters.max_batch_size.value == 32
    assert parameters.batch_timeout_micros.value == 5000
    assert parameters.max_enqueued_batches.value == 100
    assert parameters.num_batch_threads.value == 2


def test_monitoring_config_enables_prometheus():
    config = read_monitoring_config(CONFIG / "monitoring.config")
    assert config.DESCRIPTOR.full_name == "tensorflow.serving.MonitoringConfig"
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "batching.config"
    bad.write_text("max_batch_size: 32\n")  # a wrapper message, not a number
    with pytest.raises(ConfigFileError, match=r"batching\.config: not a BatchingParameters"):
        read_batching_parameters(bad)
    bad.write_text("prometheus_config { enabled: true }\n")
    with pytest.raises(ConfigFileError, match="MonitoringConfig"):
        read_monitoring_config(bad)
    with pytest.raises(ConfigFileError, match="cannot read"):
        read_model_server_config(tmp_path / "missing.config")


def test_docker_compose_runs_pinned_tf_serving_with_the_configs():
    compose = yaml.safe_load((SERVING / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    assert service["image"] == "tensorflow/serving:2.16.1"
    assert set(service["ports"]) == {"127.0.0.1:8500:8500", "127.0.0.1:8501:8501"}  # loopback
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert mounts["/models"] == "../artifacts/serving"
    assert (SERVING / mounts["/config"]).resolve() == CONFIG
    args = dict(arg.partition("=")[::2] for arg in service["command"])
    assert args["--model_config_file"] == "/config/models.config"
    assert args["--monitoring_config_file"] == "/config/monitoring.config"
    assert args["--batching_parameters_file"] == "/config/batching.config"
    assert "--enable_batching" in args
    assert float(args["--file_system_poll_wait_seconds"]) > 0
    # models.config has version labels, which TF Serving rejects at start-up without this flag.
    assert args["--allow_version_labels_for_unavailable_models"] == "true"
    for flag in ("--model_config_file", "--monitoring_config_file", "--batching_parameters_file"):
        assert (CONFIG / Path(args[flag]).name).is_file()
