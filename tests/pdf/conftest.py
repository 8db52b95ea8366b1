"""Fixtures of the PDF option tests: clients of the module's real stack (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import ServerProcess


@pytest.fixture
def client(stack: tuple[ServerProcess, ServerProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack[0].url, timeout=120) as c:
        yield c


@pytest.fixture
def converter_http(stack: tuple[ServerProcess, ServerProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack[1].url, timeout=120) as c:
        yield c
