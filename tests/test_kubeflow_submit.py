"""kubeflow.submit drives the kfp 2.5 client against a fake KFP API server on 127.0.0.1 that
records each request: the spec is uploaded as a pipeline and a version, the experiment is made,
and the run names that version; parameters the spec does not declare are refused before any
request."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from kubeflow.submit import main

SPEC = {
    "pipelineInfo": {"name": "text-recognizer-characters"},
    "root": {
        "dag": {"tasks": {}},
        "inputDefinitions": {"parameters": {"epochs": {"parameterType": "NUMBER_INTEGER"}}},
    },
    "schemaVersion": "2.1.0",
    "sdkVersion": "tfx-1.16.0",
    "components": {},
    "deploymentSpec": {"executors": {}},
    "defaultPipelineRoot": "gs://bucket/root",
}
RESPONSES = {  # (method, path) -> JSON answer
    ("GET", "/apis/v2beta1/healthz"): {
        "multi_user": False
    },  # the client asks before namespaced calls
    ("GET", "/apis/v2beta1/pipelines"): {},
    ("POST", "/apis/v2beta1/pipelines/upload"): {
        "pipeline_id": "p-1",
        "display_name": "text-recognizer-characters",
    },
    ("POST", "/apis/v2beta1/pipelines/upload_version"): {
        "pipeline_id": "p-1",
        "pipeline_version_id": "v-1",
    },
    ("GET", "/apis/v2beta1/experiments"): {},
    ("POST", "/apis/v2beta1/experiments"): {"experiment_id": "e-1", "display_name": "characters"},
    ("POST", "/apis/v2beta1/runs"): {"run_id": "r-1", "display_name": "lenet"},
}


class FakeKfp(BaseHTTPRequestHandler):
    requests: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        url = urlparse(self.path)
        self.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": parse_qs(url.query),
                "body": self.rfile.read(length),
            }
        )
        answer = RESPONSES.get((self.command, url.path))
        self.send_response(200 if answer is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(answer or {"error": "not faked"}).encode())

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    FakeKfp.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeKfp)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", FakeKfp.requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def test_submit_uploads_the_spec_and_runs_that_version(server, spec_file, capsys):
    host, requests = server
    code = main(
        [
            str(spec_file),
            "--host",
            host,
            "--experiment",
            "characters",
            "--run-name",
            "lenet",
            "--param",
            "epochs=3",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "pipeline_id": "p-1",
        "version_id": "v-1",
        "experiment_id": "e-1",
        "run_id": "r-1",
    }
    requests = [r for r in requests if not r["path"].endswith("/healthz")]
    calls = [(r["method"], r["path"]) for r in requests]
    assert calls == [
        ("GET", "/apis/v2beta1/pipelines"),  # is there a pipeline of that name?
        ("POST", "/apis/v2beta1/pipelines/upload"),
        ("POST", "/apis/v2beta1/pipelines/upload_version"),
        ("GET", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/runs"),
    ]
    upload, version = requests[1], requests[2]
    assert upload["query"]["name"] == ["text-recognizer-characters"]
    assert b"defaultPipelineRoot: gs://bucket/root" in upload["body"]  # the file itself, multipart
    assert version["query"]["pipelineid"] == ["p-1"] and version["query"]["name"][0].startswith(
        "lenet-"
    )
    assert json.loads(requests[4]["body"])["display_name"] == "characters"
    run = json.loads(requests[5]["body"])
    assert run["display_name"] == "lenet" and run["experiment_id"] == "e-1"
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-1"}
    assert run["runtime_config"]["parameters"] == {"epochs": 3}


def test_undeclared_parameters_are_refused_before_any_request(server, spec_file, capsys):
    host, requests = server
    code = main(
        [
            str(spec_file),
            "--host",
            host,
            "--experiment",
            "x",
            "--run-name",
            "y",
            "--param",
            "learning_rate=0.1",
        ]
    )
    assert code == 2
    assert "declares no parameter learning_rate (it declares: epochs)" in capsys.readouterr().err
    assert requests == []
