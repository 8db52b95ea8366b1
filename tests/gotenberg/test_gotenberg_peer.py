"""A real Gotenberg 8 (LibreOffice variant) as the service's converter sidecar.

The service must also work with a real Gotenberg as its converter. The Gotenberg
binary is built once (Go module proxy) and cached by scripts/gotenberg.sh; the
first run on a machine takes a minute or two, later runs reuse it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import EXAMPLES, ServerProcess, start_service

from gendoc.bench.documents import invoice
from gendoc.bench.peers import start_gotenberg
from gendoc.procs import descendants
from gendoc.readiness import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.libreoffice]

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def gotenberg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_gotenberg(tmp_path_factory.mktemp("gotenberg"))
    yield server
    server.stop()


def _pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "out.pdf"
    path.write_bytes(pdf)
    pdftotext = shutil.which("pdftotext") or "/usr/bin/pdftotext"
    return subprocess.run([pdftotext, str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


def test_it_is_gotenberg_8_on_loopback(gotenberg: ServerProcess) -> None:
    assert gotenberg.url.startswith("http://127.0.0.1:")
    health = httpx.get(f"{gotenberg.url}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "up"
    assert health.json()["details"]["libreoffice"]["status"] == "up"
    assert httpx.get(f"{gotenberg.url}/version", timeout=5).text.strip().startswith("8.")


def test_service_renders_the_example_invoice_through_gotenberg(
        gotenberg: ServerProcess, tmp_path: Path) -> None:
    service = start_service(tmp_path, converter_url=gotenberg.url)
    try:
        # Ready means the service reads Gotenberg's own /health as "converter up".
        wait_until(lambda: httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200,
                   30, what="service ready against Gotenberg")
        rid = f"gotenberg-peer-{uuid.uuid4().hex[:12]}"
        with httpx.Client(base_url=service.url, timeout=120) as client:
            client.put("/v1/templates/invoice", content=(EXAMPLES / "invoice.docx").read_bytes(),
                       headers={"content-type": DOCX}).raise_for_status()
            data = json.loads((EXAMPLES / "invoice.json").read_text())
            response = client.post("/v1/render", json={"template": "invoice", "data": data,
                                                       "format": "pdf"},
                                   headers={"X-Request-ID": rid})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/pdf")
        assert response.content.startswith(b"%PDF-")
        text = _pdf_text(response.content, tmp_path)
        assert data["invoice"]["number"] in text
        assert data["seller"]["name"] in text
        # Gotenberg, not some other converter, made it: the service passed its
        # request id as Gotenberg-Trace and Gotenberg logged the request under it.
        wait_until(lambda: rid in gotenberg.logs(), 10, what="Gotenberg logged the request")
    finally:
        service.stop()



def test_one_per_core_each_with_its_own_temp_directory(tmp_path: Path) -> None:
    """The bench's `gotenberg-cores` peer: Gotenberg deletes `lu*` and `OSL_PIPE*` from its
    temp directory on every LibreOffice restart, so each process must have its own. Two of
    them restarting after every conversion, converting at the same time, all succeed, and
    each one's LibreOffice files are in its own directory."""
    docx = invoice().rendered()
    pair = [start_gotenberg(tmp_path / name, restart_after=1) for name in ("a", "b")]
    try:
        def three(server: ServerProcess) -> list[int]:
            # One at a time per process: both restart side by side, nothing queues long
            # enough to meet Gotenberg's 30 s API timeout on a busy machine.
            return [httpx.post(f"{server.url}/forms/libreoffice/convert",
                               files={"files": ("invoice.docx", docx, DOCX)},
                               timeout=120).status_code for _ in range(3)]

        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(three, pair))
        assert codes == [[200] * 3] * 2
        for name, server in zip(("a", "b"), pair, strict=True):
            (tmp,) = (tmp_path / name).glob("gotenberg-*-tmp")
            # Its LibreOffice (there is one between restarts) runs with that directory as
            # TMPDIR, where LibreOffice puts its lu* files.
            assert wait_until(lambda s=server: _soffice_tmpdirs(s.proc.pid), 60,
                              what="a LibreOffice under Gotenberg") == {str(tmp)}
    finally:
        for server in pair:
            server.stop()


def _soffice_tmpdirs(pid: int) -> set[str]:
    """TMPDIR of every soffice.bin below `pid` (empty while LibreOffice restarts)."""
    found = set()
    for child in descendants(pid):
        if child.command.startswith("soffice"):
            try:
                environ = Path(f"/proc/{child.pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue  # it exited meanwhile
            found |= {e[7:].decode() for e in environ if e.startswith(b"TMPDIR=")}
    return found
