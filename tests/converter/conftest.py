"""Fixtures of the converter tests (helpers in converter_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from converter.converter_support import start_converter

from gendoc.procs import GendocProcess


@pytest.fixture(scope="session")
def converter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GendocProcess]:
    """One converter (2 instances) shared by the API and isolation tests."""
    server = start_converter(tmp_path_factory.mktemp("converter"), pool_size=2, whole=True,
                             queue_size=16)
    yield server
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert server.stop() in (0, -15), server.logs()[-3000:]


@pytest.fixture
def http(converter: GendocProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=converter.url, timeout=60) as client:
        yield client
