"""Optional API keys and slow uploads, against a real service."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import ServerProcess, start_service
from docx_helpers import make_docx

KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    keyfile = tmp_path_factory.mktemp("keys") / "keys"
    keyfile.write_text(f"{KEY}\nanother-key\n")
    server = start_service(tmp_path_factory.mktemp("auth"),
                           env={"GENDOC_API_KEYS_FILE": str(keyfile), "GENDOC_BODY_TIMEOUT": "1.5"})
    yield server
    server.stop()


def render(server: ServerProcess, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/render", headers=headers,
                      files={"template": ("t.docx", make_docx("x"))}, data={"format": "docx"})


def test_requests_without_a_valid_key_get_401(keyed: ServerProcess) -> None:
    for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"},
                    {"authorization": KEY}):
        r = render(keyed, headers)
        assert r.status_code == 401, headers
        assert r.json()["type"].endswith("/unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_valid_keys_pass_and_never_reach_the_logs(keyed: ServerProcess) -> None:
    assert render(keyed, {"x-api-key": KEY}).status_code == 200
    assert render(keyed, {"authorization": "Bearer another-key"}).status_code == 200
    assert httpx.get(f"{keyed.url}/healthz").status_code == 200  # probes need no key
    assert httpx.get(f"{keyed.url}/metrics").status_code == 200
    assert KEY not in keyed.logs() and "another-key" not in keyed.logs()


def test_slow_upload_gets_408(keyed: ServerProcess) -> None:
    """A body that stops arriving is answered 408 once GENDOC_BODY_TIMEOUT (1.5 s here) has
    passed, with the whole problem document, and the connection is released."""
    port = int(keyed.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = ("POST /v1/render HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"X-API-Key: {KEY}\r\nContent-Length: 1000\r\n\r\n")
        sock.sendall(head.encode() + b'{"tem')
        started = time.monotonic()
        status, headers, body = read_response(sock)
        elapsed = time.monotonic() - started
    assert status.startswith("HTTP/1.1 408"), (status, body)
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["type"].endswith("/request-timeout") and problem["status"] == 408, problem
    assert "1.5 s" in problem["detail"], problem
    # Not before the timeout; the upper bound only says the connection is not held open.
    assert 1.4 <= elapsed < 8, elapsed


def read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One whole HTTP/1.1 response: status line, headers (lower-cased), the body of its
    Content-Length, however many segments it arrives in."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before the headers ended: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {len(body)} of {length} body bytes"
        body += chunk
    return status, headers, body[:length]
