"""Fixtures shared by every tier: free ports, real server processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gendoc.procs import GendocProcess, free_port, spawn_gendoc

ServerProcess = GendocProcess

REPO = Path(__file__).resolve().parent.parent
# docxtpl's own test templates, vendored with their origin and licence
# (tests/corpus/docxtpl/README.md, LICENSE.txt).
CORPUS = REPO / "tests" / "corpus" / "docxtpl"
CORPUS_CASES = 36  # the corpus README's count: fewer means a broken or partial copy
EXAMPLES = REPO / "src" / "gendoc" / "examples"


def corpus_cases() -> list[Path]:
    """Every case file of the corpus; fails (never skips) when the corpus is missing."""
    cases = sorted((CORPUS / "cases").glob("*.json"))
    if len(cases) != CORPUS_CASES:
        pytest.fail(f"the docxtpl corpus at {CORPUS} has {len(cases)} cases, "
                    f"not {CORPUS_CASES}", pytrace=False)
    return cases


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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """(service, converter): a real service in front of a real converter with two
    LibreOffice instances, on 127.0.0.1, for one test module."""
    from converter.converter_support import start_converter

    tmp = tmp_path_factory.mktemp("stack")
    converter = start_converter(tmp, pool_size=2)
    try:
        service = start_service(tmp, converter_url=converter.url)
    except BaseException:
        converter.stop()
        raise
    yield service, converter
    service.stop()
    converter.stop()
