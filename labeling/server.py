"""A local, offline Label Studio for labeling handwriting pages.

    python -m labeling.server [--pages DIR] [--port 8080] [--data-dir DIR] [--venv DIR]

Label Studio lives in its own virtualenv (`.venv-labelstudio`, built once with uv): it needs
numpy 2, the project's environment pins numpy 1.26 for TensorFlow. The server listens on
127.0.0.1 only, sends nothing anywhere (analytics, the PyPI version check and Sentry, which it
enables by default, are switched off), and serves the page images under `--pages` to its
projects (Label Studio's local-files storage: each project's pages are a SUBFOLDER of it).

The admin account and its API token come from LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD and
LABEL_STUDIO_USER_TOKEN; what is unset is generated on the first start and kept in
DATA_DIR/credentials.json (mode 600). Label Studio creates the account once per data dir, so
later values of these variables must match the first ones.
"""

import argparse
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from labeling.client import LabelingError, LabelStudio

LABEL_STUDIO_VERSION = "1.23.2"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / ".venv-labelstudio"
DEFAULT_DATA_DIR = REPO / "artifacts" / "labelstudio"
DATABASE = "label_studio.sqlite3"  # Label Studio's SQLite file in its data dir
EMPTY_DATABASE = "empty-label_studio.sqlite3"  # in the venv: migrated, no account, no project
PR_SET_PDEATHSIG = 1  # prctl option, linux/prctl.h
START_TIMEOUT = 300.0  # seconds; 30 s on 2 busy cores
CREDENTIAL_VARIABLES = {
    "username": "LABEL_STUDIO_USERNAME",
    "password": "LABEL_STUDIO_PASSWORD",
    "token": "LABEL_STUDIO_USER_TOKEN",
}
# Label Studio reads each setting from LABEL_STUDIO_<NAME> before <NAME>, so these win over
# anything in the caller's environment.
OFFLINE_SETTINGS = {
    "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
    "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
    "LABEL_STUDIO_SENTRY_DSN": "",
    "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
    "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
    "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
}


@dataclass(frozen=True)
class Server:
    url: str
    username: str
    token: str
    log: Path
    process: subprocess.Popen

    def client(self) -> LabelStudio:
        return LabelStudio(self.url, self.token)


def ensure_venv(venv: Path = DEFAULT_VENV, progress: bool = True) -> Path:
    """The `label-studio` command of `venv`, building the virtualenv first if needed (a half-built
    one, without the marker file, is rebuilt; uv's own output is the progress), and the empty
    migrated database that new data dirs start from."""
    command = venv / "bin" / "label-studio"
    marker = venv / f".label-studio-{LABEL_STUDIO_VERSION}"
    if not (marker.is_file() and command.is_file()):
        _build_venv(venv, progress)
        marker.write_text(f"label-studio=={LABEL_STUDIO_VERSION}\n")
    if not (venv / EMPTY_DATABASE).is_file():
        _migrate_empty_database(command, venv, progress)
    return command


def _build_venv(venv: Path, progress: bool) -> None:
    if venv.exists():
        if not (venv / "pyvenv.cfg").is_file():
            raise LabelingError(f"{venv} exists and is not a virtualenv; remove it or use --venv")
        shutil.rmtree(venv)
    uv = _uv()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if progress:
        print(f"building the Label Studio {LABEL_STUDIO_VERSION} virtualenv in {venv} (once)")
    for step in (
        [*uv, "venv", "--python", python, str(venv)],
        [
            *uv,
            "pip",
            "install",
            "--python",
            str(venv / "bin" / "python"),
            f"label-studio=={LABEL_STUDIO_VERSION}",
        ],
    ):
        result = subprocess.run(step, capture_output=not progress, text=True)
        if result.returncode:
            output = "" if progress else (result.stderr or result.stdout)[-2000:]
            raise LabelingError(
                f"could not build the Label Studio virtualenv in {venv}: {' '.join(step)} "
                f"exited with {result.returncode} (PyPI must be reachable the first time)"
                + (f":\n{output}" if output else "")
            )


def _migrate_empty_database(command: Path, venv: Path, progress: bool) -> None:
    """Label Studio migrates a new database before anything else (`label-studio version` does
    only that); done once here, a new data dir starts from a copy in seconds instead of minutes."""
    if progress:
        print("setting up Label Studio's empty database (once)")
    with tempfile.TemporaryDirectory(dir=venv) as scratch:
        environment = {**_clean_environment(), "LABEL_STUDIO_BASE_DATA_DIR": scratch}
        result = subprocess.run(
            [str(command), "version", "--data-dir", scratch],
            env=environment,
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        database = Path(scratch) / DATABASE
        if result.returncode or not database.is_file():
            raise LabelingError(
                f"Label Studio could not set up its database (exit {result.returncode}):\n"
                + (result.stderr or result.stdout)[-2000:]
            )
        database.rename(venv / EMPTY_DATABASE)


def _clean_environment() -> dict:
    """The caller's environment without the project venv's Python settings, plus the offline ones."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        **OFFLINE_SETTINGS,
    }


def credentials(data_dir: Path) -> dict:
    """username, password, token (environment first, else DATA_DIR/credentials.json, generated
    on first use) and the Django secret key, which keeps sign-ins valid across restarts. The file
    is rewritten with what is used, so it always names the current account."""
    path = data_dir / "credentials.json"
    try:
        stored = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as e:
        raise LabelingError(f"{path} is not readable JSON: {e}") from e
    generated = {
        "username": "admin@example.com",
        "password": secrets.token_urlsafe(12),
        "token": secrets.token_hex(20),
        "secret_key": secrets.token_urlsafe(40),
    }
    given = {
        key: os.environ[var] for key, var in CREDENTIAL_VARIABLES.items() if os.environ.get(var)
    }
    values = {**generated, **stored, **given}
    if values != stored:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(values, indent=1) + "\n")
    return values


@contextmanager
def running(
    pages: Path,
    port: int = 8080,
    data_dir: Path = DEFAULT_DATA_DIR,
    venv: Path = DEFAULT_VENV,
    host: str = "127.0.0.1",
    progress: bool = True,
) -> Iterator[Server]:
    """Label Studio serving `pages`, healthy and accepting the token; stopped on exit.
    `port` 0 picks a free port."""
    pages, data_dir = pages.resolve(), data_dir.resolve()
    if not pages.is_dir():
        raise LabelingError(f"pages folder {pages} is not a directory")
    command = ensure_venv(venv, progress)
    port = _free_port(host, port)
    account = credentials(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "label-studio.log"
    if not (data_dir / DATABASE).exists():
        shutil.copyfile(venv / EMPTY_DATABASE, data_dir / DATABASE)
    environment = {
        **_clean_environment(),
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(pages),
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": account["username"],
        "LABEL_STUDIO_PASSWORD": account["password"],
        "LABEL_STUDIO_USER_TOKEN": account["token"],
        "SECRET_KEY": account["secret_key"],
    }
    arguments = [str(command), "start", "--no-browser", "--enable-legacy-api-token"]
    arguments += ["--internal-host", host, "--port", str(port), "--data-dir", str(data_dir)]
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            arguments,
            env=environment,
            cwd=data_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it
            preexec_fn=_die_with_parent,
        )
    server = Server(f"http://{host}:{port}", account["username"], account["token"], log, process)
    try:
        _wait_healthy(server, progress)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: Server, progress: bool) -> None:
    if progress:
        print(f"starting Label Studio (log: {server.log})")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LabelingError(
                f"Label Studio exited with {server.process.returncode}; "
                f"last lines of {server.log}:\n{_tail(server.log)}"
            )
        try:
            if requests.get(f"{server.url}/health", timeout=5).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    else:
        raise LabelingError(f"Label Studio did not become healthy within {START_TIMEOUT:.0f} s")
    try:
        server.client().get("/api/projects", page_size=1)
    except LabelingError as e:
        if "(401)" not in str(e):
            raise
        raise LabelingError(
            f"{e}: this data dir's account was created with another token; use the first "
            f"LABEL_STUDIO_USER_TOKEN or another --data-dir"
        ) from e


def _die_with_parent() -> None:
    """In the child: Linux sends it SIGTERM when this process dies, even by SIGKILL, so no
    Label Studio outlives the command or test that started it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port(host: str, port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            # Label Studio itself would silently move to the next free port.
            raise LabelingError(f"port {port} on {host} is in use ({e}); pass --port") from e
        return probe.getsockname()[1]


def _uv() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    for python in (sys.executable, "python3.10", "python3"):
        found = shutil.which(python)
        if (
            found
            and not subprocess.run([found, "-m", "uv", "--version"], capture_output=True).returncode
        ):
            return [found, "-m", "uv"]
    raise LabelingError("uv is needed to build Label Studio's virtualenv: pip install uv")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labeling.server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--pages",
        type=Path,
        default=DEFAULT_DATA_DIR / "pages",
        help="folder served to projects; each project's page images are a subfolder of it",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args(argv)
    args.pages.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops Label Studio too
    try:
        with running(args.pages, args.port, args.data_dir, args.venv, args.host) as server:
            print(f"Label Studio {LABEL_STUDIO_VERSION} at {server.url}")
            print(f"  sign in as {server.username} (password in {args.data_dir}/credentials.json)")
            print(f"  API token: {server.token}")
            print(f"  pages: {args.pages.resolve()} (one subfolder per project)")
            print("  Ctrl-C stops it")
            server.process.wait()
            print(f"error: Label Studio exited with {server.process.returncode}", file=sys.stderr)
            return 1
    except LabelingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
