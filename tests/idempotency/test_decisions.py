"""The pure decisions of Idempotency-Key: key syntax, scope, fingerprint, what is kept."""

from __future__ import annotations

import asyncio

import pytest
from gendoc_service.errors import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidIdempotencyKey
from gendoc_service.idempotency import (
    Record,
    StoredResponse,
    conflict,
    fingerprint,
    form_digest,
    keep,
    parse_key,
    scoped_key,
)


def test_keys_quoted_as_the_draft_writes_them_or_bare() -> None:
    assert parse_key('"8e03978e-40d5-43e8-bc93-6894a57f9324"') == \
        "8e03978e-40d5-43e8-bc93-6894a57f9324"
    assert parse_key("abc") == "abc"
    for bad in ["", '""', "a b", "x" * 256, "caf\xe9"]:
        with pytest.raises(InvalidIdempotencyKey):
            parse_key(bad)


def test_keys_are_scoped_per_api_key() -> None:
    assert scoped_key(b"k1", "same") != scoped_key(b"k2", "same")
    assert scoped_key(b"", "same") != scoped_key(b"k1", "same")
    assert scoped_key(b"k1", "same") == scoped_key(b"k1", "same")
    assert "k1" not in scoped_key(b"k1", "same")


def test_fingerprint_covers_route_query_and_body() -> None:
    base = fingerprint("POST", "/v1/render", b"", "application/octet-stream", b"{}")
    assert base == fingerprint("POST", "/v1/render", b"", "application/octet-stream", b"{}")
    assert base != fingerprint("POST", "/v1/render/batch", b"", "application/octet-stream",
                               b"{}")
    assert base != fingerprint("POST", "/v1/render", b"a=1", "application/octet-stream", b"{}")
    assert base != fingerprint("POST", "/v1/render", b"", "application/octet-stream", b"{ }")


def test_a_json_body_counts_by_its_content() -> None:
    a = fingerprint("POST", "/v1/jobs", b"", "application/json",
                    b'{"b": [1, 2], "a": "\\u00e9"}')
    assert a == fingerprint("POST", "/v1/jobs", b"", "application/json; charset=utf-8",
                            '{"a":"\u00e9","b":[1,2]}'.encode())
    assert a != fingerprint("POST", "/v1/jobs", b"", "application/json", b'{"a":"e","b":[1,2]}')
    assert fingerprint("POST", "/v1/jobs", b"", "application/json", b"{not json") != \
        fingerprint("POST", "/v1/jobs", b"", "application/json", b"{not json ")


@pytest.mark.parametrize(("status", "kept"), [(200, True), (202, True), (404, True),
                                              (422, True), (408, False), (429, False),
                                              (499, False), (500, False), (503, False)])
def test_answers_that_ask_for_a_retry_are_not_kept(status: int, kept: bool) -> None:
    assert keep(status) is kept


def test_conflicts() -> None:
    assert isinstance(conflict(Record("a", False), "b"), IdempotencyKeyReused)
    assert isinstance(conflict(Record("a", True), "b"), IdempotencyKeyReused)
    running = conflict(Record("a", False), "a")
    assert isinstance(running, IdempotencyKeyInUse)
    assert running.headers["Retry-After"] == "1"
    assert conflict(Record("a", True, StoredResponse(200, [], b"x")), "a") is None


def test_records_round_trip() -> None:
    response = StoredResponse(201, [("content-type", "application/pdf"), ("x-a", "b\n")],
                              b"%PDF\n\x00\xff")
    for record in [Record("f", False), Record("f", True), Record("f", True, response)]:
        assert Record.from_bytes(record.to_bytes()) == record


def test_a_form_counts_by_its_parts_not_its_boundary() -> None:
    def form(boundary: str, data: str) -> tuple[str, bytes]:
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"template\"; "
                f"filename=\"t.docx\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                f"DOCX\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n"
                f"{data}\r\n--{boundary}--\r\n").encode()
        return f"multipart/form-data; boundary={boundary}", body

    a = asyncio.run(form_digest(*form("aaa", '{"x": 1}')))
    assert a is not None
    assert a == asyncio.run(form_digest(*form("bbb", '{"x": 1}')))
    assert a != asyncio.run(form_digest(*form("aaa", '{"x": 2}')))
    assert asyncio.run(form_digest("application/json", b"{}")) is None
    assert asyncio.run(form_digest("multipart/form-data; boundary=z", b"garbage")) is None
