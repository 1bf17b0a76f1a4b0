"""A small client for Label Studio's REST API: the few calls this package makes, plain HTTP.

label-studio-sdk would pull numpy 2 and pydantic 2 into the project's environment, whose pins
(numpy 1.26 for TensorFlow 2.16) it cannot share, so requests is used directly. Every failure
becomes one LabelingError naming the call and Label Studio's own reason (its validation errors),
not a traceback.
"""

from typing import Any

import requests

TIMEOUT = 60.0  # seconds; an export of many tasks is the slowest call
PAGE_SIZE = 100


class LabelingError(Exception):
    """Label Studio cannot be built, started or reached, or refused a call (message says why)."""


class LabelStudio:
    """Calls to one Label Studio server as the user owning `token` (a legacy API token)."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def get(self, path: str, **params) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, json=body)

    def call(self, method: str, path: str, **kwargs) -> Any:
        where = f"{method} {self.url}{path}"
        try:
            response = self.session.request(method, self.url + path, timeout=TIMEOUT, **kwargs)
        except requests.ConnectionError as e:
            raise LabelingError(f"cannot reach Label Studio at {self.url}: is it running?") from e
        except requests.RequestException as e:
            raise LabelingError(f"{where}: {type(e).__name__}: {e}") from e
        if response.status_code == 401:
            raise LabelingError(f"{where}: the API token was refused (401)")
        if not response.ok:
            raise LabelingError(f"{where}: {response.status_code} {_reason(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as e:
            raise LabelingError(f"{where}: not a JSON answer: {response.text[:200]!r}") from e

    def tasks(self, project: int) -> list:
        """Every task of a project (the tasks endpoint pages by `total`, not by `next`)."""
        tasks: list = []
        while True:
            answer = self.get(
                "/api/tasks", project=project, page=len(tasks) // PAGE_SIZE + 1, page_size=PAGE_SIZE
            )
            tasks += answer["tasks"]
            if len(tasks) >= answer["total"] or not answer["tasks"]:
                return tasks


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        details = body.get("validation_errors") or body.get("detail") or body
        return str(details)[:500]
    return str(body)[:500]
