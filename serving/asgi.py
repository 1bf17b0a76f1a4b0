"""HTTP plumbing shared by the app and the local server's REST API, both Starlette apps on uvicorn.

- `read_body`: a request body under a size limit and a time limit, refused early from its
  Content-Length when that already says too much.
- `error_response`: `{"error": ...}` with the error's HTTP status, closing the connection when
  the body was left unread (so it is not taken for the next request).
- `UvicornThread`: uvicorn serving an app on a background thread (port 0: a free port), for the
  local server and the tests; `serve` runs one in the foreground for a CLI.
"""

import json
import socket
import threading

import anyio
import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from uvicorn.protocols.http.h11_impl import H11Protocol

from serving.errors import ServingError, too_large

BODY_SECONDS = 60.0  # a client may take this long to send its body (slow or stalled ones)


async def read_body(
    request: Request, limit: int, limit_note: str, drain_limit: int, require_length: bool = False
) -> bytes:
    """The body, at most `limit` bytes (413 naming `limit_note` beyond); chunked bodies are
    counted as they arrive. A body over the limit is read to its end and dropped (kept in memory
    no more than `limit`) when it is at most `drain_limit` bytes, so that the client, still
    sending it, gets the 413 instead of a broken pipe; beyond, the connection is closed."""
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    declared = request.headers.get("content-length")
    if declared is None and not chunked:
        if require_length:
            raise ServingError.from_http(411, "missing Content-Length header")
        return b""
    length = None
    if declared is not None:
        try:
            length = int(declared)
            if length < 0:
                raise ValueError
        except ValueError:
            raise ServingError.from_http(400, f"bad Content-Length {declared!r}") from None
    if length is not None and length > limit:
        if length <= drain_limit:
            await _receive(request, 0, drain_limit)
        raise too_large(
            f"request body is {length} bytes, more than the limit of {limit} ({limit_note})"
        )
    body, received = await _receive(request, limit, drain_limit)
    if received > limit:
        raise too_large(f"request body is more than the limit of {limit} bytes ({limit_note})")
    if length is not None and len(body) < length:
        raise ServingError.from_http(400, f"request body ended after {len(body)} of {length} bytes")
    return body


async def _receive(request: Request, keep: int, limit: int) -> tuple:
    """(the first `keep` bytes, bytes received) of what the client sends within BODY_SECONDS,
    until it ends, goes away or passes `limit`."""
    body = bytearray()
    received = 0
    try:
        with anyio.fail_after(BODY_SECONDS):
            async for chunk in request.stream():
                received += len(chunk)
                if len(body) < keep:
                    body += chunk
                if received > limit:
                    break
    except ClientDisconnect:
        pass
    except TimeoutError:
        raise ServingError.from_http(
            408, f"request body not received within {BODY_SECONDS:g} s"
        ) from None
    return bytes(body), received


def error_response(error: ServingError, close: bool = False, indent: int | None = None) -> Response:
    """TF Serving's error body, `{"error": message}`, with the error's HTTP status."""
    response = Response(
        json.dumps({"error": error.message}, indent=indent),
        status_code=error.http_status,
        media_type="application/json",
    )
    if close:
        # Raw, so the name goes out as written ("Connection"); Starlette lowercases its headers.
        response.raw_headers.append((b"Connection", b"close"))
    return response


class HalfCloseH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering clients that half-close their side once they have sent
    their request (`shutdown(SHUT_WR)`), as http.server did: uvicorn's own closes the connection
    at the client's EOF, before the answer can go out. Here EOF ends the request body (a short
    body is then reported as such) and the connection closes after the answer."""

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio allows True
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return None  # nothing in flight: close now
        cycle.more_body = False
        cycle.keep_alive = False
        cycle.message_event.set()
        return True  # keep the transport open to write the answer


class UvicornThread:
    """`app` served by uvicorn on a daemon thread; `start()` returns once it listens."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, name: str = "http-server"):
        self._socket = _listen(host, port)
        self.host, self.port = host, self._socket.getsockname()[1]
        self._server = uvicorn.Server(_config(app, host, self.port))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=name, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "UvicornThread":
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.01)
        if not self._server.started:
            raise OSError(f"the HTTP server on {self.url} did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with proto IPPROTO_TCP, as uvicorn's own are: asyncio turns
    Nagle's algorithm off only on such sockets' connections, and with it on, each keep-alive
    answer (headers and body in two writes) waits ~40 ms for the client's delayed ACK."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(socket.SOMAXCONN)
    return sock


def serve(app, host: str, port: int) -> None:
    """Serves `app` in the foreground until SIGINT/SIGTERM."""
    uvicorn.Server(_config(app, host, port)).run()


def _config(app, host: str, port: int) -> uvicorn.Config:
    # log_config=None: keep the process's logging as the CLI or the tests set it up.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HalfCloseH11Protocol,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
    )
