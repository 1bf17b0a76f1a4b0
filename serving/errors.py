"""The one error type of serving: a refused request, as a gRPC status and its HTTP equivalent.

The local server raises it (and answers it over REST and gRPC), the clients raise it for what a
server answered, and the app raises it for bad requests; so one table maps gRPC status codes to
HTTP statuses, the one TF Serving's REST API uses. Only grpcio is imported: clients stay light.
"""

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

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None,
                 status: int | str | None = None):
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS.get(code, 500)
        self.status = code.name if status is None else status
        super().__init__(f"{self.status}: {message}")

    @classmethod
    def from_http(cls, http_status: int, message: str) -> "ServingError":
        """An error known by its HTTP status (a REST answer, or the app's own refusals)."""
        return cls(code_for_http(http_status), message, http_status, status=http_status)


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def too_large(message: str) -> ServingError:
    """RESOURCE_EXHAUSTED, answered over REST as 413 rather than TF Serving's 429."""
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)
