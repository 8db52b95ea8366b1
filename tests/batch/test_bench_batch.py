"""The bench's batch mode: PDFs counted per item, zips checked, ratios over per-document."""

from __future__ import annotations

import asyncio
import io
import zipfile

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gendoc.bench import report, stack
from gendoc.bench.load import NOT_A_PDF, Measured, Row, batch_call


def test_a_batch_row_counts_every_pdf_of_its_zips() -> None:
    row = Row("gendoc-batch", "closed", "c=2", items=200)
    row.add(Measured([(200, 5.0)] * 4, 12.0, client_cpu_s=0.1, machine_cpu_s=10.0,
                     peak_rss_kb=900 * 1024))
    assert row.rounds == [4000.0]  # 4 batches of 200 in 12 s
    assert row.peak_rss_mb == 900


def _zip(entries: list[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in entries:
            archive.writestr(name, b"%PDF-1.7" if name.endswith(".pdf") else b"{}")
    return out.getvalue()


def test_batch_call_accepts_only_a_zip_of_every_pdf() -> None:
    answers = {"good": _zip(["a.pdf", "b.pdf", "c.pdf"]),
               "error": _zip(["a.pdf", "b.error.json", "c.pdf"]),
               "short": _zip(["a.pdf", "b.pdf"]), "junk": b"not a zip"}

    async def batch(request: Request) -> Response:
        return Response(answers[request.path_params["kind"]], media_type="application/zip")

    app = Starlette(routes=[Route("/{kind}", batch, methods=["POST"])])

    async def go() -> dict[str, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench") as client:
            pdfs: list[bytes] = []
            codes = {kind: await batch_call([client], {"method": "POST", "url": f"/{kind}"},
                                            3, pdfs)() for kind in answers}
            assert pdfs == [b"%PDF-1.7"]
            return codes

    assert asyncio.run(go()) == {"good": 200, "error": NOT_A_PDF, "short": NOT_A_PDF,
                                 "junk": NOT_A_PDF}


def _row(mode: str, per_min: float, load: str = "c=8") -> dict[str, object]:
    return {"mode": mode, "model": "closed", "load": load, "per_min": per_min}


def test_batch_ratios_compare_each_batch_with_its_document_alone() -> None:
    rows = [_row("gendoc", 1200), _row("gendoc-batch", 4800, "c=2"),
            _row("gendoc-contract3", 300), _row("gendoc-batch-contract3", 900, "c=2")]
    ratios = stack.batch_ratios(rows)
    assert ratios == {"gendoc-batch/gendoc": 4.0, "gendoc-batch-contract3/gendoc-contract3": 3.0}
    assert stack.batch_ratios(rows[:2]) == {"gendoc-batch/gendoc": 4.0}
    assert "gendoc-batch" not in stack.ratios(rows)  # not a peer of gendoc's


def test_the_stack_table_shows_the_batch_ratios() -> None:
    result = {"date": "2026-11-28", "cores": 2, "cpu": "test", "command": "gendoc bench",
              "settings": {"rounds": 1, "duration": 15.0, "warmup": 3.0, "concurrency": 8},
              "descriptions": {}, "rows": [],
              "batch_ratios": {"gendoc-batch/gendoc": 4.0}}
    assert "- `gendoc-batch` / `gendoc`: **4.00**" in report.stack_section(result)
