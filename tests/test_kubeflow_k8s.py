"""The TF Serving manifests are valid Kubernetes objects, checked offline against the API's own
types: the `kubernetes` client's models (in the lock) know every field name and type of each kind,
and their constructors refuse a missing required field. No Kubernetes JSON schema package is
installed (kubernetes-validate is a 22 MB wheel), so this is the schema we have. The objects also
fit together: the Service and HPA find the Deployment, the volumes name the ConfigMap and PVC, and
the ConfigMap is serving/config verbatim."""

import re
from pathlib import Path

import kubernetes.client
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "kubeflow" / "k8s" / "tf-serving.yaml"
PRIMITIVES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "object": object,
    "datetime": str,
    "date": str,
}


def model_name(doc: dict) -> str:
    version = doc["apiVersion"].split("/")[-1]
    return version[0].upper() + version[1:] + doc["kind"]


def unknown_fields(data, type_name: str, path: str = "") -> list:
    """Where `data` does not fit the client's type `type_name`: unknown keys, wrong types."""
    if type_name.startswith("list["):
        if not isinstance(data, list):
            return [f"{path}: expected a list"]
        return [
            e
            for i, item in enumerate(data)
            for e in unknown_fields(item, type_name[5:-1], f"{path}[{i}]")
        ]
    if type_name.startswith("dict("):
        value_type = type_name[5:-1].split(", ", 1)[1]
        return [e for k, v in data.items() for e in unknown_fields(v, value_type, f"{path}.{k}")]
    if type_name in PRIMITIVES:
        ok = isinstance(data, PRIMITIVES[type_name]) and not (
            type_name == "int" and isinstance(data, bool)
        )
        return [] if ok else [f"{path}: expected {type_name}, got {data!r}"]
    model = getattr(kubernetes.client, type_name)
    if not isinstance(data, dict):
        return [f"{path}: expected an object ({type_name})"]
    fields = {json_key: attr for attr, json_key in model.attribute_map.items()}
    errors = [f"{path}.{key}: no such field in {type_name}" for key in data if key not in fields]
    return errors + [
        e
        for key, value in data.items()
        if key in fields
        for e in unknown_fields(value, model.openapi_types[fields[key]], f"{path}.{key}")
    ]


def documents() -> dict:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


@pytest.mark.parametrize(
    "kind",
    ["ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "HorizontalPodAutoscaler"],
)
def test_each_object_fits_its_api_type(kind):
    doc = documents()[kind]
    assert unknown_fields(doc, model_name(doc)) == []
    # The constructors enforce required fields (e.g. a container without a name is refused).
    kubernetes.client.ApiClient()._ApiClient__deserialize(doc, model_name(doc))


def test_the_checker_refuses_misspelled_and_mistyped_fields_and_missing_required_ones():
    deployment = documents()["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["paht"] = "/v1/models/lines"
    container["ports"][0]["containerPort"] = "8500"
    errors = unknown_fields(deployment, "V1Deployment")
    assert any(".paht: no such field in V1HTTPGetAction" in e for e in errors)
    assert any("containerPort: expected int" in e for e in errors)
    del container["name"]
    with pytest.raises(ValueError, match="name"):
        kubernetes.client.ApiClient()._ApiClient__deserialize(deployment, "V1Deployment")


def test_objects_fit_together_and_serve_the_push_root_with_our_configs():
    docs = documents()
    deployment, service, hpa = docs["Deployment"], docs["Service"], docs["HorizontalPodAutoscaler"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert sorted(p["port"] for p in service["spec"]["ports"]) == [8500, 8501]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    [container] = pod["spec"]["containers"]
    assert container["image"] == "tensorflow/serving:2.16.1"  # the compose file's pin
    assert container["resources"]["requests"]["cpu"]  # the HPA scales on CPU utilization
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert (
        mounts["/models"]["persistentVolumeClaim"]["claimName"]
        == docs["PersistentVolumeClaim"]["metadata"]["name"]
    )
    config_map = docs["ConfigMap"]
    assert mounts["/config"]["configMap"]["name"] == config_map["metadata"]["name"]
    for name, text in config_map["data"].items():
        assert text == (ROOT / "serving" / "config" / name).read_text(), name
    for arg in container["args"]:
        for path in re.findall(r"=/config/(\S+)", arg):
            assert path in config_map["data"], arg
    models = re.findall(r'name: "(\w+)"', config_map["data"]["models.config"])
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] in {f"/v1/models/{m}" for m in models} and probe["port"] == "http"
    assert "monitoring.config" in config_map["data"]
