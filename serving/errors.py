"""The one error type of serving: a refused request, as a gRPC status and its HTTP equivalent.

The local server raises it (and answers it over REST and gRPC), the clients raise it for what a
server answered, and the app raises it for bad requests; so one table maps gRPC status codes to
HTTP statuses, the one TF Serving's REST API uses. Only grpcio is imported: clients stay light.
"""

import re

import grpc

# The HTTP status TF Serving's REST API answers for each gRPC status (its ToHTTPStatusCode).
HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def code_for_http(http_status: int) -> grpc.StatusCode:
    """The first gRPC status TF Serving answers with `http_status` (other 4xx: INVALID_ARGUMENT)."""
    for code, status in HTTP_STATUS.items():
        if status == http_status:
            return code
    return grpc.StatusCode.INVALID_ARGUMENT if 400 <= http_status < 500 else grpc.StatusCode.UNKNOWN


class ServingError(Exception):
    """A request that cannot be served.

    `code` is the gRPC status code, `http_status` its HTTP equivalent (TF Serving's table unless
    given, e.g. 413 for our size limits), `message` the server's own words. `status` is what the
    transport said: the HTTP status (int) of a REST answer (`from_http`), else the code's name
    (e.g. "NOT_FOUND").
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        http_status: int | None = None,
        status: int | str | None = None,
    ):
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS.get(code, 500)
        self.status = code.name if status is None else status
        super().__init__(f"{self.status}: {message}")

    @classmethod
    def from_http(cls, http_status: int, message: str) -> "ServingError":
        """An error known by its HTTP status (a REST answer, or the app's own refusals)."""
        return cls(code_for_http(http_status), message, http_status, status=http_status)


# A bug's answer: the details (exception, paths) go to the server's log, not to the client.
INTERNAL_ERROR = ServingError(grpc.StatusCode.INTERNAL, "Internal error; the server logged it")


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def too_large(message: str) -> ServingError:
    """RESOURCE_EXHAUSTED, answered over REST as 413 rather than TF Serving's 429."""
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)


# What a TensorFlow error carries besides its message: graph node and function names
# ("[[{{node map/while/DecodeImage}}]]", "{{function_node __inference_...}}", "[Op:...]"),
# Python stack lines (File "/path/...", line N) and tf.Assert's wrapping
# ("assertion failed: [...]").
_TF_INTERNALS = re.compile(r"\[\[.*?\]\]|\{\{(?:function_)?node [^}]*\}\}|\[Op:[^\]]*\]", re.S)
_STACK_LINE = re.compile(r'^\s*(File "|Detected at node|Graph execution error|<stack traces)')
_ASSERTION = re.compile(r"assertion failed: \[(.*)\]", re.S)
_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+[\w.@+-]*")


def public_message(text: str) -> str:
    """An error message from TensorFlow (or another backend) as a client may see it: what was
    wrong with the request, without node names, stack lines or file paths."""
    lines = [line for line in text.splitlines() if not _STACK_LINE.match(line)]
    text = _TF_INTERNALS.sub("", " ".join(line.strip() for line in lines))
    text = _ASSERTION.sub(lambda match: match.group(1), text)
    text = _PATH.sub("<path>", text)
    return re.sub(r"\s+", " ", text).strip()
