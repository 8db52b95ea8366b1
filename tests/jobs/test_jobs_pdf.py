"""PDF jobs through the real converter (LibreOffice): a zip of PDFs, and one merged PDF."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from conftest import start_service
from converter.converter_support import pdf_text, start_converter
from jobs.jobs_support import result_zip, store_template, submit, wait_final
from pypdf import PdfReader


@pytest.mark.libreoffice
def test_pdf_jobs_as_a_zip_and_merged(tmp_path: Path) -> None:
    converter = start_converter(tmp_path, pool_size=1)
    try:
        service = start_service(tmp_path, converter_url=converter.url)
        try:
            with httpx.Client(base_url=service.url, timeout=60) as c:
                name = store_template(c, "Invoice {{ n }}")
                items = [{"n": 100 + i} for i in range(5)]
                job = submit(c, name, items, format="pdf", filename="inv")
                assert wait_final(c, job["id"])["done"] == 5
                archive = result_zip(c, job["id"])
                assert archive.namelist() == [f"inv-000{i}.pdf" for i in range(1, 6)]
                for i, entry in enumerate(archive.namelist()):
                    assert f"Invoice {100 + i}" in pdf_text(archive.read(entry), tmp_path)

                merged = submit(c, name, items, format="pdf", merge=True)
                final = wait_final(c, merged["id"])
                assert final["status"] == "succeeded", final
                r = c.get(f"/v1/jobs/{merged['id']}/result")
                assert r.headers["content-type"] == "application/pdf"
                assert final["result"]["size"] == len(r.content)
                pages = PdfReader(io.BytesIO(r.content)).pages
                assert [f"Invoice {100 + i}" in pages[i].extract_text() for i in range(5)] == \
                    [True] * 5
                item = c.get(f"/v1/jobs/{merged['id']}/items/2")
                assert item.headers["content-type"] == "application/pdf"
                assert "Invoice 102" in pdf_text(item.content, tmp_path)
        finally:
            service.stop()
    finally:
        converter.stop()
