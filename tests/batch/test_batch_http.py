"""PDF batches through the real service and converter: merged when they can be, item by item
when they cannot, one bad item failing alone, the mode in a header and a metric."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from batch.templates import REPORT_ITEMS, report
from conftest import EXAMPLES, ServerProcess, start_service
from converter.converter_support import metric, start_converter
from jobs.jobs_support import submit, wait_final
from pypdf import PdfReader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gendoc.procs import free_port
from gendoc.readiness import wait_until

pytestmark = pytest.mark.libreoffice
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def converter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_converter(tmp_path_factory.mktemp("batch-converter"), pool_size=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(converter: ServerProcess, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ServerProcess]:
    server = start_service(tmp_path_factory.mktemp("batch-service"), converter_url=converter.url)
    yield server
    server.stop()


def store(client: httpx.Client, template: bytes) -> str:
    name = f"merge-{uuid.uuid4().hex[:8]}"
    r = client.put(f"/v1/templates/{name}", content=template, headers={"content-type": DOCX})
    assert r.status_code == 201, r.text
    return name


def invoices(count: int) -> list[dict]:
    data = json.loads((EXAMPLES / "invoice.json").read_text())
    return [{**data, "invoice": {**data["invoice"], "number": f"INV-{i:05d}"}}
            for i in range(count)]


def pdfs(response: httpx.Response) -> list[tuple[str, bytes]]:
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return [(name, archive.read(name)) for name in archive.namelist()]


def text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def batch_modes(client: httpx.Client) -> tuple[float, float]:
    """Batches counted merged and single (a label not seen yet counts 0)."""
    body = client.get("/metrics").text
    merged, single = (metric(body, "gendoc_batch_mode_total", f'mode="{mode}"')
                      for mode in ("merged", "single"))
    return (0.0 if math.isnan(merged) else merged, 0.0 if math.isnan(single) else single)


def test_invoices_are_merged_and_split_in_order(service: ServerProcess) -> None:
    with httpx.Client(base_url=service.url, timeout=300) as client:
        name = store(client, (EXAMPLES / "invoice.docx").read_bytes())
        before = batch_modes(client)
        r = client.post("/v1/render/batch", json={"template": name, "items": invoices(60)})
        assert r.status_code == 200, r.text
        assert r.headers["gendoc-batch-mode"] == "merged"
        entries = pdfs(r)
        assert [n for n, _ in entries] == [f"{name}-{i + 1:04d}.pdf" for i in range(60)]
        for i, (_, pdf) in enumerate(entries):
            assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
            assert f"INV-{i:05d}" in text(pdf)
        after = batch_modes(client)
        assert after[0] == before[0] + 1
    # Split, not converted again item by item (which would give the same zip, slower).
    assert "converting them alone" not in service.logs()


def test_numpages_template_converts_item_by_item(service: ServerProcess) -> None:
    with httpx.Client(base_url=service.url, timeout=300) as client:
        name = store(client, report("NUMPAGES"))
        r = client.post("/v1/render/batch", json={"template": name, "items": REPORT_ITEMS[:3]})
        assert r.status_code == 200, r.text
        assert r.headers["gendoc-batch-mode"] == "single"
        assert [f"R-{i:03d}" in text(pdf) for i, (_, pdf) in enumerate(pdfs(r))] == [True] * 3
        assert batch_modes(client)[1] >= 1


def test_a_bad_item_fails_the_pdf_batch_before_it_starts(service: ServerProcess) -> None:
    with httpx.Client(base_url=service.url, timeout=300) as client:
        name = store(client, (EXAMPLES / "invoice.docx").read_bytes())
        items = invoices(5)
        items[3] = {**items[3], "items": 7}  # not iterable
        r = client.post("/v1/render/batch", json={"template": name, "items": items})
        assert r.status_code == 422
        assert r.json()["item"] == 3 and r.json()["detail"].startswith("Item 3:")


class _Proxy:
    """A real HTTP server in front of the real converter that counts the merged
    conversions (those asking for exportBookmarksToPdfDestination) and how many were in
    flight at once. `drop_destinations` stands in for a converter that does not export
    named destinations (the field dropped): the merged PDFs then cannot be split, and
    each item must be converted again alone."""

    def __init__(self, target: str, drop_destinations: bool) -> None:
        self.target = target
        self.drop_destinations = drop_destinations
        self.merged_requests = 0
        self.in_flight = 0
        self.most_in_flight = 0
        app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST"])])
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def forward(self, request: Request) -> Response:
        async with httpx.AsyncClient(base_url=self.target, timeout=300) as client:
            if request.method == "GET":
                answer = await client.get(request.url.path)
            else:
                async with request.form() as form:
                    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
                    files = [("files", (f.filename, await f.read()))
                             for f in form.getlist("files") if not isinstance(f, str)]
                merged = "exportBookmarksToPdfDestination" in fields
                if merged and self.drop_destinations:
                    del fields["exportBookmarksToPdfDestination"]
                self.merged_requests += merged
                self.in_flight += merged
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                try:
                    answer = await client.post(request.url.path, data=fields, files=files)
                finally:
                    self.in_flight -= merged
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type"))

    def __enter__(self) -> _Proxy:
        self.thread.start()
        wait_until(lambda: self.server.started, 30)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@contextlib.contextmanager
def service_at(tmp_path: Path, converter_url: str, **env: str
               ) -> Iterator[tuple[httpx.Client, ServerProcess]]:
    """A service of this test's own converting at `converter_url`, and a client of it."""
    server = start_service(tmp_path, converter_url=converter_url, env=env or None)
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            yield client, server
    finally:
        server.stop()


def test_a_batchs_merged_documents_are_converted_at_once_over_the_pool(
        converter: ServerProcess, tmp_path: Path) -> None:
    """60 invoices on two render workers: two merged documents of 30, both at the
    converter (a pool of 2) at once, not one after the other."""
    with _Proxy(converter.url, drop_destinations=False) as proxy, service_at(
            tmp_path, f"http://127.0.0.1:{proxy.port}", GENDOC_RENDER_WORKERS="2") as (
            client, server):
        name = store(client, (EXAMPLES / "invoice.docx").read_bytes())
        r = client.post("/v1/render/batch", json={"template": name, "items": invoices(60)})
        assert r.status_code == 200, r.text
        assert r.headers["gendoc-batch-mode"] == "merged"
        assert len(pdfs(r)) == 60
        assert (proxy.merged_requests, proxy.most_in_flight) == (2, 2)
        assert "converting them alone" not in server.logs()


def test_a_merged_pdf_that_cannot_be_split_is_converted_item_by_item(
        converter: ServerProcess, tmp_path: Path) -> None:
    with _Proxy(converter.url, drop_destinations=True) as proxy, service_at(
            tmp_path, f"http://127.0.0.1:{proxy.port}") as (client, server):
        name = store(client, (EXAMPLES / "invoice.docx").read_bytes())
        r = client.post("/v1/render/batch", json={"template": name, "items": invoices(4)})
        assert r.status_code == 200, r.text
        entries = pdfs(r)
        assert [f"INV-{i:05d}" in text(pdf) for i, (_, pdf) in enumerate(entries)] \
            == [True] * 4
        assert all(len(PdfReader(io.BytesIO(pdf)).pages) == 1 for _, pdf in entries)
        assert proxy.merged_requests >= 1
        assert "converting them alone" in server.logs()


def test_a_merged_conversion_the_converter_refuses_is_converted_item_by_item(
        tmp_path: Path) -> None:
    """A real failure of the merged conversion: a real converter whose package limit
    (GENDOC_CONVERTER_MAX_ZIP_ENTRIES=26) lets each item through alone (24 entries) and
    refuses a merged document of two or more (30, 36: each item brings its headers,
    footers and picture) with its 400. The batch and the job still give every item its
    PDF, converted alone; the job's status says so and why."""
    converter = start_converter(tmp_path, pool_size=1, max_zip_entries=26)
    try:
        with service_at(tmp_path, converter.url) as (client, server):
            name = store(client, report())
            r = client.post("/v1/render/batch", json={"template": name,
                                                      "items": REPORT_ITEMS[:3]})
            assert r.status_code == 200, r.text
            assert [f"R-{i:03d}" in text(pdf) for i, (_, pdf) in enumerate(pdfs(r))] \
                == [True] * 3
            assert re.search(r"merged conversion of [23] items failed", server.logs())
            final = wait_final(client, submit(client, name, REPORT_ITEMS[:3],
                                              format="pdf")["id"])
            assert final["done"] == 3 and final["failed"] == 0, final
            conversion = final["conversion"]
            assert (conversion["merged"], conversion["single"]) == (0, 3)
            [(why, count)] = conversion["reasons"].items()
            assert count == 3 and why.startswith(
                "the merged conversion failed: The converter could not read"), why
    finally:
        converter.stop()


def test_a_deadline_mid_stream_ends_the_zip_never_hangs(service: ServerProcess) -> None:
    """However far the conversions got by the deadline, the answer ends: every item is its
    PDF or its problem, and none is converted again one by one after the deadline."""
    with httpx.Client(base_url=service.url, timeout=120) as client:
        name = store(client, (EXAMPLES / "invoice.docx").read_bytes())
        r = client.post("/v1/render/batch", json={"template": name, "items": invoices(120)},
                        headers={"Gendoc-Timeout": "4"})
        assert r.status_code in (200, 503), r.text
        if r.status_code == 200:
            entries = pdfs(r)
            assert len(entries) == 120
            for entry, data in entries:
                assert data.startswith(b"%PDF") or json.loads(data)["status"] == 503, entry
