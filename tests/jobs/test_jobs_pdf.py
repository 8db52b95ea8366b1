"""PDF jobs through the real converter (LibreOffice): a zip of PDFs, and one merged PDF."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
from batch.templates import REPORT_ITEMS, report
from conftest import start_service
from converter.converter_support import pdf_text, start_converter
from jobs.jobs_support import DOCX, result_zip, store_template, submit, wait_final
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
                final = wait_final(c, job["id"])
                assert final["done"] == 5
                # The status says how the PDFs were made: all five split from one.
                assert final["conversion"] == {"merged": 5, "single": 0, "reasons": {}}
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

                # A template that cannot be merged (NUMPAGES counts the whole document):
                # the status says each item was converted alone, and why.
                r = c.put("/v1/templates/numpages", content=report("NUMPAGES"),
                          headers={"content-type": DOCX})
                assert r.status_code in (200, 201), r.text
                alone = wait_final(c, submit(c, "numpages", REPORT_ITEMS[:2],
                                             format="pdf")["id"])
                assert alone["conversion"] == {"merged": 0, "single": 2,
                                               "reasons": {"a NUMPAGES field": 2}}, alone
                # A bad item fails alone; its neighbours are still merged and split.
                bad = [*items[:2], {}, *items[3:]]
                failing = wait_final(c, submit(c, name, bad, format="pdf", strict=True,
                                               filename="inv")["id"])
                assert (failing["done"], failing["failed"]) == (4, 1), failing
                assert failing["errors"][0]["item"] == 2
                assert failing["conversion"] == {"merged": 4, "single": 0, "reasons": {}}
                archive = result_zip(c, failing["id"])
                assert archive.namelist()[2] == "inv-0003.error.json"
                for i in (0, 1, 3, 4):
                    entry = archive.read(f"inv-000{i + 1}.pdf")
                    assert f"Invoice {100 + i}" in pdf_text(entry, tmp_path)
                docx = wait_final(c, submit(c, name, items[:2])["id"])
                assert docx["status"] == "succeeded" and "conversion" not in docx
        finally:
            service.stop()
    finally:
        converter.stop()
