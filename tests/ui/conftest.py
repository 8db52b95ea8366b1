"""The playground's browser tests: a real stack (converter, service with an API key)
and Debian's chromium driven by Playwright.

Playwright's own browser download cannot work here, so the browser is
/usr/bin/chromium (scripts/dev-packages.txt); axe-core comes from the npm registry
through scripts/axe-core.sh into ~/.cache/gendoc and is injected by the tests only.
Screenshots go to out/ui/ (GENDOC_UI_SHOTS overrides), kept after the run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, ServerProcess, start_service
from converter.converter_support import start_converter
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
API_KEY = "playground-test-key"
# Generous bounds for a shared 2-core machine (renders queue behind other work); each
# is a limit on waiting for a state, never a fixed sleep.
TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)


@dataclass(frozen=True)
class Stack:
    service: ServerProcess
    converter: ServerProcess

    @property
    def url(self) -> str:
        return self.service.url


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("playground")
    keys = tmp / "keys"
    keys.write_text(API_KEY + "\n")
    converter = start_converter(tmp, pool_size=1)
    try:
        service = start_service(tmp, converter_url=converter.url,
                                env={"GENDOC_API_KEYS_FILE": str(keys)})
    except BaseException:
        converter.stop()
        raise
    yield Stack(service, converter)
    service.stop()
    converter.stop()


# Module scope: Playwright's sync API keeps an event loop running in the main thread
# until it stops, and tests after these (asyncio.run in tests/webhooks) need none.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])  # root has no user namespace sandbox
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    folder = Path(os.environ.get("GENDOC_UI_SHOTS", REPO / "out" / "ui"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def axe_source() -> str:
    script = subprocess.run(["bash", str(REPO / "scripts" / "axe-core.sh")], check=True,
                            capture_output=True, text=True).stdout.strip()
    return Path(script).read_text()
