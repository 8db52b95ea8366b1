"""PDF jobs through the real converter (LibreOffice): a zip of PDFs, and one merged PDF."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
from conftest import start_service
from converter.converter_support import pdf_text, start_converter
from jobs.jobs_support import result_zip, store_template, submit, wait_final
from pypdf import PdfReader


def conversions(converter_url: str) -> float:
    text = httpx.get(f"{converter_url}/metrics").text
    match = re.search(r"^gendoc_converter_conversion_duration_seconds_count (\S+)$", text, re.M)
    assert match, "the converter's conversion count is missing from its metrics"
    return float(match.group(1))


@pytest.mark.libreoffice
def test_pdf_jobs_as_a_zip_and_merged(tmp_path: Path) -> None:
    converter = start_converter(tmp_path, pool_size=1)
    try:
        # Two render workers: a batch of 5 would be cut in two merged documents.
        service = start_service(tmp_path, converter_url=converter.url,
                                env={"GENDOC_RENDER_WORKERS": "2"})
        try:
            with httpx.Client(base_url=service.url, timeout=60) as c:
                name = store_template(c, "Invoice {{ n }}")
                items = [{"n": 100 + i} for i in range(5)]
                before = conversions(converter.url)
                job = submit(c, name, items, format="pdf", filename="inv")
                assert wait_final(c, job["id"])["done"] == 5
                # A job's chunk is one merged document (not a share per render worker):
                # LibreOffice's per-document time is paid once for the five.
                assert conversions(converter.url) - before == 1
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
