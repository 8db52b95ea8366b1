"""Size limits (413) against a real service started with small limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, start_service
from docx_helpers import make_docx

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_service(
        tmp_path_factory.mktemp("limits"),
        env={"GENDOC_MAX_TEMPLATE_BYTES": "60000", "GENDOC_MAX_DATA_BYTES": "2000",
             "GENDOC_MAX_BODY_BYTES": "100000"},
    )
    yield server
    server.stop()


def check_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["type"] == "https://gendoc.io/problems/payload-too-large"


def test_template_too_large(small: ServerProcess) -> None:
    big = make_docx(*["filler " * 50] * 3) + b"\0" * 60000
    check_413(httpx.put(f"{small.url}/v1/templates/big", content=big,
                        headers={"content-type": DOCX}))


def test_data_too_large_json(small: ServerProcess) -> None:
    check_413(httpx.post(f"{small.url}/v1/render",
                         json={"template": "t", "format": "docx", "data": {"x": "y" * 10000}}))


def test_data_too_large_multipart(small: ServerProcess) -> None:
    r = httpx.post(f"{small.url}/v1/render", files={"template": ("t.docx", make_docx("x"))},
                   data={"data": json.dumps({"x": "y" * 5000}), "format": "docx"})
    check_413(r)
    assert r.headers["content-type"].startswith("application/problem+json")


def test_body_too_large_streamed_without_length(small: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        # A well-formed multipart file part that never ends: only the overall
        # body bound can stop it.
        yield (b'--zzz\r\nContent-Disposition: form-data; name="template"; filename="t.docx"\r\n'
               b"Content-Type: application/octet-stream\r\n\r\n")
        for _ in range(50):
            yield b"x" * 4096

    r = httpx.post(f"{small.url}/v1/render", content=chunks(),
                   headers={"content-type": "multipart/form-data; boundary=zzz"})
    check_413(r)


def test_service_still_healthy(small: ServerProcess, tmp_path: Path) -> None:
    assert httpx.get(f"{small.url}/healthz").status_code == 200


def test_thousands_of_multipart_fields_are_refused(small: ServerProcess) -> None:
    fields = {f"f{i}": "x" for i in range(2000)}
    r = httpx.post(f"{small.url}/v1/render", data=fields, files={"template": ("t.docx", b"x")})
    assert r.status_code == 400
    assert r.json()["type"].endswith("/bad-request") and "fields" in r.json()["detail"]
    # docs/security.md: at most 16 fields and 1 file.
    assert "16" in r.json()["detail"], r.json()
    sixteen = {f"f{i}": "x" for i in range(15)} | {"format": "docx"}
    ok = httpx.post(f"{small.url}/v1/render", data=sixteen,
                    files={"template": ("t.docx", make_docx("x"))})
    assert ok.status_code == 200, ok.text
    # The second file is tiny: two whole packages would pass the 100 kB body
    # limit once gendoc_service.rendering (which writes zips at level 1) is loaded.
    two_files = httpx.post(f"{small.url}/v1/render", data={"format": "docx"},
                           files=[("template", ("t.docx", make_docx("x"))),
                                  ("other", ("u.docx", b"y"))])
    assert two_files.status_code == 400 and "files" in two_files.json()["detail"], two_files.text
