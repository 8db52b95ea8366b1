"""Optional API keys and slow uploads, against a real service."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from docx_helpers import make_docx

from conftest import ServerProcess, start_service

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
    for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}, {"authorization": KEY}):
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
    port = int(keyed.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = ("POST /v1/render HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"X-API-Key: {KEY}\r\nContent-Length: 1000\r\n\r\n")
        sock.sendall(head.encode() + b'{"tem')
        started = time.monotonic()
        reply = sock.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 408"), reply
    assert "request-timeout" in reply
    assert time.monotonic() - started < 8
