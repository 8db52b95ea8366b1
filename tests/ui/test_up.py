"""`gendoc up` prints the playground's address next to the API's, and it serves the page."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gendoc.procs import free_port, spawn_gendoc
from gendoc.readiness import wait_until

pytestmark = pytest.mark.libreoffice


def test_up_prints_the_playground_address(tmp_path: Path) -> None:
    port, converter_port = free_port(), free_port()
    log = tmp_path / "up.log"
    up = spawn_gendoc(["up", "--port", str(port), "--converter-port", str(converter_port),
                       "--store-dir", str(tmp_path / "store")], port, "/readyz", log=log,
                      timeout=180)
    try:
        address = f"http://127.0.0.1:{port}/ui/"
        line = wait_until(lambda: next((x for x in log.read_text().splitlines()
                                        if x.startswith("gendoc up:")), None),
                          60, what="gendoc up's address line")
        assert f"service http://127.0.0.1:{port}" in str(line)
        assert f"playground {address}" in str(line)
        page = httpx.get(address)
        assert page.status_code == 200 and "gendoc playground" in page.text
    finally:
        up.stop()
