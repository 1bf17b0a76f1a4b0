"""The verified downloader, against file:// URLs and throwaway HTTP servers on loopback (one\nrequiring basic auth, as IAM's does)."""

import base64
import functools
import hashlib
import http.server
import re
import threading

import pytest

from data import download as download_module
from data.download import download, load_metadata
from data.errors import DatasetError

PAYLOAD = b"pretend archive\n" * 5000
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def served(tmp_path):
    """A directory holding archive.zip, to fetch by file:// or over HTTP."""
    served_dir = tmp_path / "served"
    served_dir.mkdir()
    (served_dir / "archive.zip").write_bytes(PAYLOAD)
    return served_dir


def serve(handler):
    """Run an HTTP server with `handler` on a free loopback port; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def http_base(served):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    yield from serve(functools.partial(QuietHandler, directory=served))


def names_in(directory):
    return [p.name for p in directory.iterdir()]


def test_file_url(served, tmp_path):
    dest = tmp_path / "out" / "gzip.zip"
    assert download((served / "archive.zip").as_uri(), dest, PAYLOAD_SHA256, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert names_in(dest.parent) == ["gzip.zip"]  # no temporary file left behind


def test_http_url(http_base, tmp_path):
    dest = tmp_path / "gzip.zip"
    download(f"{http_base}/archive.zip", dest, PAYLOAD_SHA256.upper(), progress=True)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(http_base, tmp_path):
    dest = tmp_path / "gzip.zip"
    url = f"{http_base}/archive.zip"
    with pytest.raises(DatasetError) as error:
        download(url, dest, "0" * 64, progress=False)
    assert (
        url in str(error.value)
        and "0" * 64 in str(error.value)
        and PAYLOAD_SHA256 in str(error.value)
    )
    assert names_in(tmp_path) == ["served"]


def test_corrupt_existing_file_is_replaced(served, tmp_path):
    dest = tmp_path / "gzip.zip"
    dest.write_bytes(b"half a download")
    download((served / "archive.zip").as_uri(), dest, PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_intact_existing_file_is_not_downloaded_again(tmp_path):
    dest = tmp_path / "gzip.zip"
    dest.write_bytes(PAYLOAD)
    download("http://127.0.0.1:9/unreachable", dest, PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("url", ["{base}/missing.zip", "not-a-url"])
def test_fetch_errors_name_the_url(http_base, tmp_path, url):
    url = url.format(base=http_base)
    with pytest.raises(DatasetError, match=f"could not download {re.escape(url)}"):
        download(url, tmp_path / "gzip.zip", PAYLOAD_SHA256, progress=False)
    assert names_in(tmp_path) == ["served"]


def test_emnist_metadata_pins_official_archive():
    meta = load_metadata("emnist")
    assert meta["url"] == "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
    assert re.fullmatch(r"[0-9a-f]{64}", meta["sha256"]) and meta["checksum_source"]
    with pytest.raises(DatasetError, match="no metadata for dataset 'nope'"):
        load_metadata("nope")


def test_cli_downloads_into_dest(served, tmp_path, monkeypatch, capsys):
    real_load = download_module.load_metadata
    fake = {
        **real_load("emnist"),
        "url": (served / "archive.zip").as_uri(),
        "sha256": PAYLOAD_SHA256,
    }
    monkeypatch.setattr(download_module, "load_metadata", lambda name: fake)
    assert download_module.main(["emnist", "--dest", str(tmp_path / "raw"), "--no-progress"]) == 0
    assert (tmp_path / "raw" / "gzip.zip").read_bytes() == PAYLOAD
    fake["sha256"] = "1" * 64
    (tmp_path / "raw" / "gzip.zip").unlink()
    assert download_module.main(["emnist", "--dest", str(tmp_path / "raw"), "--no-progress"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err


class BasicAuthHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, only with the expected basic-auth credentials."""

    expected = "Basic " + base64.b64encode(b"reader@example.org:s3cret pass").decode()
    payload = b"iam archive bytes\n" * 1000

    def do_GET(self):
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="iam"')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def auth_server():
    yield from serve(BasicAuthHandler)


def test_iam_download_with_credentials_from_the_environment(
    auth_server, tmp_path, monkeypatch, capsys
):
    real = download_module.load_metadata("iam")
    assert real["credentials_env"] == ["IAM_USERNAME", "IAM_PASSWORD"] and len(real["files"]) == 7
    digest = hashlib.sha256(BasicAuthHandler.payload).hexdigest()
    fake = {
        **real,
        "files": [
            {"url": f"{auth_server}/ascii.tgz", "filename": "ascii.tgz", "sha256": digest},
            {"url": f"{auth_server}/lines.tgz", "filename": "lines.tgz", "sha256": None},
        ],
    }
    monkeypatch.setattr(download_module, "load_metadata", lambda name: fake)
    dest = tmp_path / "iam"

    monkeypatch.delenv("IAM_USERNAME", raising=False)
    monkeypatch.delenv("IAM_PASSWORD", raising=False)
    assert download_module.main(["iam", "--dest", str(dest), "--no-progress"]) == 1
    assert "set the environment variables IAM_USERNAME and IAM_PASSWORD" in capsys.readouterr().err

    monkeypatch.setenv("IAM_USERNAME", "reader@example.org")
    monkeypatch.setenv("IAM_PASSWORD", "wrong")
    assert download_module.main(["iam", "--dest", str(dest), "--no-progress"]) == 1
    assert "401" in capsys.readouterr().err

    monkeypatch.setenv("IAM_PASSWORD", "s3cret pass")
    assert download_module.main(["iam", "--dest", str(dest), "--no-progress"]) == 0
    output = capsys.readouterr()
    assert (dest / "ascii.tgz").read_bytes() == BasicAuthHandler.payload
    assert f"NOT verified: no pinned sha256; its sha256 is {digest}" in output.out
    for secret in ("s3cret pass", "reader@example.org", BasicAuthHandler.expected.split()[1]):
        assert secret not in output.out + output.err
        assert not [
            p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()
        ]
