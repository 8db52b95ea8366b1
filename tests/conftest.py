"""Fixtures shared by every tier: free ports, real server processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gendoc.readiness import wait_until

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "docxtpl"
EXAMPLES = REPO / "src" / "gendoc" / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A real `gendoc ...` process listening on 127.0.0.1."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_gendoc(args: list[str], port: int, ready_path: str, log: Path,
                 env: dict[str, str] | None = None, timeout: float = 60.0) -> ServerProcess:
    with log.open("wb") as fh:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "gendoc", *args], stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"gendoc {args[0]} exited early:\n{log.read_text()}")
        return httpx.get(url + ready_path, timeout=2).status_code == 200

    try:
        wait_until(ready, timeout, interval=0.1, what=f"gendoc {args[0]} on {url}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return ServerProcess(url, proc, log)


def start_service(tmp: Path, *extra: str, converter_url: str = "",
                  env: dict[str, str] | None = None) -> ServerProcess:
    port = free_port()
    return start_gendoc(
        ["serve", "--port", str(port), "--store-dir", str(tmp / "store"),
         "--converter-url", converter_url, *extra],
        port, "/healthz", tmp / f"service-{port}.log", env=env,
    )


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real service (no converter) shared by the API tests."""
    server = start_service(tmp_path_factory.mktemp("service"))
    yield server
    server.stop()


@pytest.fixture
def client(service: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as c:
        yield c
