"""POST /v1/render/batch (DOCX out here; PDF batches are in the converter integration tests)."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import httpx
from conftest import start_service
from docx_helpers import make_docx, part_texts

from gendoc.procs import free_port

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def stored(client: httpx.Client, text: str) -> str:
    name = f"batch-{uuid.uuid4().hex[:8]}"
    client.put(f"/v1/templates/{name}", content=make_docx(text), headers={"content-type": DOCX})
    return name


def test_batch_streams_a_zip_in_order(client: httpx.Client) -> None:
    name = stored(client, "Dear {{ who }}")
    items = [{"who": f"person {i}"} for i in range(25)]
    r = client.post("/v1/render/batch", json={"template": name, "items": items, "format": "docx",
                                              "filename": "letters"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == 'attachment; filename="letters.zip"'
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = archive.namelist()
    assert names == [f"letters-{i + 1:04d}.docx" for i in range(25)]
    for i, entry in enumerate(names):
        assert f"Dear person {i}" in part_texts(archive.read(entry))["word/document.xml"]


def test_a_bad_item_fails_the_batch_before_it_starts(client: httpx.Client) -> None:
    name = stored(client, "{{ a.b }}")
    r = client.post("/v1/render/batch", json={"template": name, "format": "docx", "strict": True,
                                              "items": [{"a": {"b": 1}}, {"a": {}},
                                                        {"a": {"b": 3}}]})
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("/undefined-variables") and body["item"] == 1
    assert body["variables"] == ["a.b"]


def test_batch_request_errors(client: httpx.Client) -> None:
    name = stored(client, "x")
    cases = [
        ({"template": name, "items": [], "format": "docx"}, 422),
        ({"template": name, "items": [{}], "format": "docx", "merge": True}, 422),
        ({"template": "missing-template", "items": [{}], "format": "docx"}, 404),
        ({"template": name, "items": [{}] * 501, "format": "docx"}, 422),
        ({"template": name, "items": [1], "format": "docx"}, 422),
    ]
    for body, status in cases:
        r = client.post("/v1/render/batch", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_pdf_batch_without_converter_is_501(client: httpx.Client) -> None:
    r = client.post("/v1/render/batch", json={"template": stored(client, "x"), "items": [{}]})
    assert r.status_code == 501


def test_docx_never_goes_to_the_converter(tmp_path: Path) -> None:
    """With a converter configured but down, DOCX (single and batch) still works; PDF is 503."""
    server = start_service(tmp_path, converter_url=f"http://127.0.0.1:{free_port()}")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            name = stored(client, "Dear {{ who }}")
            one = client.post("/v1/render", json={"template": name, "format": "docx",
                                                  "data": {"who": "Ada"}})
            assert one.status_code == 200 and one.headers["content-type"] == DOCX
            batch = client.post("/v1/render/batch", json={"template": name, "format": "docx",
                                                          "items": [{"who": "Ada"}, {}]})
            assert batch.status_code == 200, batch.text
            names = zipfile.ZipFile(io.BytesIO(batch.content)).namelist()
            assert names == [f"{name}-0001.docx", f"{name}-0002.docx"]
            pdf = client.post("/v1/render", json={"template": name, "format": "pdf"})
            assert pdf.status_code == 503
            assert pdf.json()["type"].endswith("/converter-unavailable")
    finally:
        server.stop()
