"""`gendoc render` as a user runs it: a real process against a real service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ServerProcess
from docx_helpers import make_docx, part_texts


def gendoc_render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gendoc", "render", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_render_with_locale_and_timezone(service: ServerProcess, tmp_path: Path) -> None:
    template = tmp_path / "t.docx"
    template.write_bytes(make_docx("{{ total|format_currency('EUR') }}",
                                   "{{ sent|format_datetime('short') }}"))
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"total": "1234.5", "sent": "2026-02-27T16:05:00Z"}))
    out = tmp_path / "out.docx"
    done = gendoc_render(str(template), str(data), "-o", str(out), "--url", service.url,
                         "--locale", "de_DE", "--timezone", "Europe/Berlin")
    assert done.returncode == 0, done.stderr
    body = part_texts(out)["word/document.xml"]
    assert body[:2] == ["1.234,50\xa0€", "27.02.26, 17:05"]
    # Without the flags the service's defaults (en_US, UTC) apply.
    assert gendoc_render(str(template), str(data), "-o", str(out),
                         "--url", service.url).returncode == 0
    assert part_texts(out)["word/document.xml"][:2] == ["€1,234.50", "2/27/26, 4:05\u202fPM"]


def test_unknown_locale_is_named(service: ServerProcess, tmp_path: Path) -> None:
    template = tmp_path / "t.docx"
    template.write_bytes(make_docx("x"))
    data = tmp_path / "d.json"
    data.write_text("{}")
    done = gendoc_render(str(template), str(data), "-o", str(tmp_path / "o.docx"),
                         "--url", service.url, "--locale", "xx_NOPE")
    assert done.returncode == 1
    assert "422" in done.stderr and "locale" in done.stderr
