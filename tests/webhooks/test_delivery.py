"""One delivery over real HTTP to a receiver on 127.0.0.1, verified with the reference
implementation of Standard Webhooks; refusals (allow list, metadata address through a
resolver the test controls, redirect) reach no receiver and are final."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES
from gendoc_service.webhooks import AllowList, Limits, deliver, parse_secret
from standardwebhooks.webhooks import Webhook
from webhooks.receiver import running_receiver

from gendoc.procs import free_port
from gendoc.readiness import wait_until

SECRET = "whsec_" + base64.b64encode(b"gendoc-test-secret-32-bytes-long").decode()
KEY = parse_secret(SECRET)
BODY = json.dumps({"type": "job.succeeded", "data": {"id": "j1"}}).encode()


def resolver_for(table: dict[str, str], asked: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return [table[host]]
    return resolve


def test_delivered_and_verified_by_the_reference_implementation() -> None:
    with running_receiver(204) as rx:
        allow = AllowList.parse(f"127.0.0.1:{rx.port}")
        out = asyncio.run(deliver(rx.url, "msg_a", BODY, key=KEY, attempt=1, allow=allow))
        assert out.final and out.attempt.delivered, out
        assert out.attempt.status == 204 and out.attempt.duration > 0
        (got,) = rx.received
        assert got.headers["webhook-id"] == "msg_a"
        assert Webhook(SECRET).verify(got.body, got.headers)["data"] == {"id": "j1"}


def test_a_name_is_resolved_once_and_the_connection_pinned_to_that_address() -> None:
    asked: list[str] = []
    with running_receiver(200) as rx:
        allow = AllowList.parse(f"hooks.test:{rx.port}, 127.0.0.1")
        resolve = resolver_for({"hooks.test": "127.0.0.1"}, asked)
        out = asyncio.run(deliver(f"http://hooks.test:{rx.port}/in", "msg_b", BODY, key=KEY,
                                  attempt=1, allow=allow, resolver=resolve))
        assert out.attempt.delivered, out
        assert asked == ["hooks.test"]
        assert rx.received[0].headers["host"] == f"hooks.test:{rx.port}"
        assert rx.received[0].path == "/in"


def test_a_listed_name_that_resolves_to_loopback_is_refused_unless_the_address_is_listed(
) -> None:
    with running_receiver(200) as rx:
        allow = AllowList.parse(f"hooks.test:{rx.port}")
        resolve = resolver_for({"hooks.test": "127.0.0.1"}, [])
        out = asyncio.run(deliver(f"http://hooks.test:{rx.port}/", "m", BODY, key=KEY,
                                  attempt=1, allow=allow, resolver=resolve))
        assert out.final and not out.attempt.delivered
        assert "not a public address" in (out.attempt.error or "")
        assert rx.received == []


def test_a_name_resolving_to_the_metadata_address_is_refused() -> None:
    allow = AllowList.parse("metadata.test")
    resolve = resolver_for({"metadata.test": "169.254.169.254"}, [])
    out = asyncio.run(deliver("http://metadata.test/latest/meta-data/", "m", BODY, key=KEY,
                              attempt=1, allow=allow, resolver=resolve))
    assert out.final and out.attempt.status is None
    assert "169.254.169.254" in (out.attempt.error or "")
    assert "refused" in (out.attempt.error or "")


def test_a_target_outside_the_allow_list_is_refused_before_any_connection() -> None:
    with running_receiver(200) as rx:
        allow = AllowList.parse("hooks.example.com")
        out = asyncio.run(deliver(rx.url, "m", BODY, key=KEY, attempt=1, allow=allow))
        assert out.final and not out.attempt.delivered
        assert "GENDOC_WEBHOOK_ALLOWED_HOSTS" in (out.attempt.error or "")
        assert rx.received == []


def test_a_redirect_is_not_followed_and_is_final() -> None:
    with running_receiver(200) as elsewhere, running_receiver(
            ("redirect", elsewhere.url)) as rx:
        allow = AllowList.parse("127.0.0.1")
        out = asyncio.run(deliver(rx.url, "m", BODY, key=KEY, attempt=1, allow=allow))
        assert out.final and not out.attempt.delivered
        assert out.attempt.status == 302
        assert "not followed" in (out.attempt.error or "")
        assert len(rx.received) == 1 and elsewhere.received == []


def test_a_failing_receiver_is_recorded_for_a_retry() -> None:
    with running_receiver(503) as rx:
        allow = AllowList.parse(f"127.0.0.1:{rx.port}")
        out = asyncio.run(deliver(rx.url, "m", BODY, key=KEY, attempt=2, allow=allow))
        assert not out.final and out.attempt.status == 503 and out.attempt.attempt == 2


def test_a_large_answer_is_not_read_beyond_the_limit() -> None:
    with running_receiver(("big", 200 * 1024 * 1024)) as rx:
        allow = AllowList.parse(f"127.0.0.1:{rx.port}")
        out = asyncio.run(deliver(rx.url, "m", BODY, key=KEY, attempt=1, allow=allow,
                                  limits=Limits(max_response=1024)))
        # 200 MiB read to the end would take seconds and be visible; the attempt
        # stops after its first chunk and counts as delivered.
        assert out.attempt.delivered, out


def test_nothing_listening_is_an_error_for_a_retry() -> None:
    with running_receiver(200) as rx:
        port = rx.port
    allow = AllowList.parse(f"127.0.0.1:{port}")
    out = asyncio.run(deliver(f"http://127.0.0.1:{port}/", "m", BODY, key=KEY, attempt=1,
                              allow=allow))
    assert not out.final and out.attempt.status is None and out.attempt.error


def certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` (openssl, as an operator would make one)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_to_a_pinned_address_checks_the_certificate_against_the_name(
        tmp_path: Path) -> None:
    cert, key = certificate(tmp_path, "hooks.test")
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    trust = ssl.create_default_context(cafile=str(cert))
    with running_receiver(200, tls=server_side) as rx:
        allow = AllowList.parse(f"hooks.test:{rx.port}, other.test:{rx.port}, 127.0.0.1")
        resolve = resolver_for({"hooks.test": "127.0.0.1", "other.test": "127.0.0.1"}, [])
        out = asyncio.run(deliver(f"https://hooks.test:{rx.port}/tls", "m", BODY, key=KEY,
                                  attempt=1, allow=allow, resolver=resolve, verify=trust))
        assert out.attempt.delivered, out
        assert rx.received[0].headers["host"] == f"hooks.test:{rx.port}"
        # The same address under a name the certificate does not carry: refused by TLS.
        wrong = asyncio.run(deliver(f"https://other.test:{rx.port}/tls", "m", BODY, key=KEY,
                                    attempt=1, allow=allow, resolver=resolve, verify=trust))
        assert not wrong.attempt.delivered and "certificate" in (wrong.attempt.error or "").lower()
        assert len(rx.received) == 1


def test_the_readme_receiver_verifies_our_signature(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "receiver.log").open("w+")
    receiver = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "webhook_receiver.py"), str(port)],
        env={**os.environ, "GENDOC_WEBHOOK_SECRET": SECRET}, stdout=log, stderr=log, text=True)
    try:
        allow = AllowList.parse(f"127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}/"
        event = json.dumps({"type": "job.succeeded", "timestamp": "2026-11-28T12:00:00Z",
                            "data": {"id": "j42", "result": {"url": "/v1/jobs/j42/result"}}})

        def sent() -> int | None:
            out = asyncio.run(deliver(url, "msg_r", event.encode(), key=KEY, attempt=1,
                                      allow=allow))
            return out.attempt.status
        assert wait_until(sent, 30, what="the example receiver answering") == 204
        # Signed with another secret: refused.
        other = parse_secret("whsec_" + base64.b64encode(b"x" * 32).decode())
        out = asyncio.run(deliver(url, "msg_s", event.encode(), key=other, attempt=1,
                                  allow=allow))
        assert out.attempt.status == 401
        log.seek(0)
        assert "job.succeeded j42 /v1/jobs/j42/result" in log.read()
    finally:
        receiver.terminate()
        receiver.wait(timeout=20)
        log.close()
