"""Templates provided as plain files in the store (a ConfigMap mount), through the API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from conftest import EXAMPLES, start_service
from docx_helpers import part_texts


def test_a_mounted_docx_is_listed_described_and_rendered(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "invoice.docx").write_bytes((EXAMPLES / "invoice.docx").read_bytes())
    server = start_service(tmp_path)
    try:
        url = server.url
        listed = httpx.get(f"{url}/v1/templates").json()["templates"]
        assert [t["name"] for t in listed] == ["invoice"]
        meta = httpx.get(f"{url}/v1/templates/invoice").json()
        assert meta["source"] == "file" and meta["variables"]["customer"]["address"] == {
            "street": None, "city": None}
        data = json.loads((EXAMPLES / "invoice.json").read_text())
        r = httpx.post(f"{url}/v1/render",
                       json={"template": "invoice", "data": data, "format": "docx"})
        assert r.status_code == 200 and r.headers["x-template-version"] == meta["latest"]
        assert any("INV-2026-0042" in t for t in part_texts(r.content)["word/document.xml"])
        gone = httpx.delete(f"{url}/v1/templates/invoice")
        assert gone.status_code == 409 and gone.json()["type"].endswith("/template-read-only")
    finally:
        server.stop()


def test_a_fleet_with_a_per_pod_store_refuses_uploads_but_serves_its_files(
        tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "invoice.docx").write_bytes((EXAMPLES / "invoice.docx").read_bytes())
    server = start_service(tmp_path, env={"GENDOC_FLEET_MAX_REPLICAS": "2"})
    try:
        put = httpx.put(f"{server.url}/v1/templates/letter",
                        content=(EXAMPLES / "invoice.docx").read_bytes())
        assert put.status_code == 409, put.text
        problem = put.json()
        assert problem["type"].endswith("/store-not-shared") and problem["max_replicas"] == 2
        assert "GENDOC_STORE_URL" in problem["detail"]
        data = json.loads((EXAMPLES / "invoice.json").read_text())
        r = httpx.post(f"{server.url}/v1/render",
                       json={"template": "invoice", "data": data, "format": "docx"})
        assert r.status_code == 200
    finally:
        server.stop()
