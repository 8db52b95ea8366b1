"""Fixtures shared by every tier: free ports, real server processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gendoc.procs import GendocProcess, free_port, spawn_gendoc

ServerProcess = GendocProcess

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "docxtpl"
EXAMPLES = REPO / "src" / "gendoc" / "examples"


def start_gendoc(args: list[str], port: int, ready_path: str, log: Path,
                 env: dict[str, str] | None = None, timeout: float = 60.0) -> ServerProcess:
    return spawn_gendoc(args, port, ready_path, log=log, env=env, timeout=timeout)


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
