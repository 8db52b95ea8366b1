"""The README's run command: scripts/demo.sh (behind `make demo`) end to end."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO
from pypdf import PdfReader

from gendoc.procs import free_port

pytestmark = pytest.mark.libreoffice


def test_demo_starts_the_stack_renders_the_example_and_stops(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "GENDOC_DEMO_PORT": str(free_port()),
           "GENDOC_DEMO_CONVERTER_PORT": str(free_port())}
    done = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    pdf = out / "invoice.pdf"
    assert f"your document is at {pdf.resolve()}" in done.stdout
    text = PdfReader(pdf).pages[0].extract_text()
    assert "INV-2026-0042" in text and "Globex & Partners <Ltd>" in text
    # The second example: the stored letterhead included, German dates and money, $html.
    letter = out / "letter.pdf"
    assert f"the second example is at {letter.resolve()}" in done.stdout
    text = " ".join(PdfReader(letter).pages[0].extract_text().split())
    for shown in ("Acme Documents GmbH", "angebote@acme.example", "Berlin, 24. November 2026",
                  "12.480,00 €", "19 % MwSt.", "Donnerstag, 31. Dezember 2026",
                  "10:30 Uhr", "Leistungsumfang", "je eine Fassung auf Deutsch und Englisch",
                  "Meilenstein", "Abnahme 70 %", "unsere AGB"):
        assert shown in text, (shown, text)
    assert "never shown" not in text and "alert" not in text
    # Both processes are gone: nothing listens on the demo's ports any more.
    for port in (env["GENDOC_DEMO_PORT"], env["GENDOC_DEMO_CONVERTER_PORT"]):
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                   text=True)
        # An ss that failed (missing, bad filter) prints nothing either: only its success counts.
        assert listening.returncode == 0, listening.stderr
        assert listening.stdout.strip() == "", port
