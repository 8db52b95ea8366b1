"""Helpers of the PDF option tests: veraPDF, and reading a PDF back with pikepdf/pypdf."""

from __future__ import annotations

import functools
import io
import re
import subprocess
from pathlib import Path

import pikepdf
from pypdf import PdfReader

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def verapdf_launcher() -> str:
    """veraPDF's CLI, installed (once, cached) by scripts/verapdf.sh; fails if it cannot be."""
    done = subprocess.run(["bash", str(REPO / "scripts" / "verapdf.sh")], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def verapdf(pdfs: dict[str, bytes], flavour: str, tmp: Path) -> dict[str, str]:
    """veraPDF's verdict per name for `flavour`: "PASS", or "FAIL" and the failed rules
    ("FAIL 6.6.2.3.1-1 6.6.2.3.1-2").

    One JVM for all the files: veraPDF takes seconds to start.
    """
    paths = {}
    for name, pdf in pdfs.items():
        path = tmp / f"{name}.pdf"
        path.write_bytes(pdf)
        paths[str(path)] = name
    done = subprocess.run([verapdf_launcher(), "--flavour", flavour, "--format", "text", "-v",
                           *paths], capture_output=True, text=True, timeout=600)
    verdicts: dict[str, str] = {}
    current = ""
    for line in done.stdout.splitlines():
        found = re.match(r"^(PASS|FAIL) (\S+) (\S+)$", line)
        if found and found.group(2) in paths:
            current = paths[found.group(2)]
            verdicts[current] = found.group(1)
        elif line.startswith("  FAIL ") and current:  # a failed rule: "  FAIL 6.6.2.3.1-1"
            verdicts[current] += " " + line.split()[1]
    assert set(verdicts) == set(pdfs), (done.stdout[-3000:], done.stderr[-3000:])
    return verdicts


def page_texts(pdf: bytes, password: str = "") -> list[str]:
    """The text of each page (pypdf), decrypted with `password` by pikepdf (qpdf) first."""
    with pikepdf.open(io.BytesIO(pdf), password=password) as doc:
        if doc.is_encrypted:
            plain = io.BytesIO()
            doc.save(plain)
            pdf = plain.getvalue()
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def xmp_and_info(pdf: bytes, password: str = "") -> tuple[dict[str, object], dict[str, str]]:
    """The XMP properties (pikepdf's reading) and the document information dictionary."""
    with pikepdf.open(io.BytesIO(pdf), password=password) as doc:
        meta = doc.open_metadata()
        xmp = {key: meta.get(key) for key in ("dc:title", "dc:creator", "dc:description",
                                              "pdf:Keywords", "pdfaid:part",
                                              "pdfaid:conformance", "pdfuaid:part")}
        info = {str(k): str(v) for k, v in doc.docinfo.items()}
    return xmp, info


def watermark_opacities(pdf: bytes, password: str = "") -> list[list[float]]:
    """Per page, the fill opacities (/ca) of the watermark forms (/GdWm…) the page's content
    draws: an empty list for a page that draws none. (Pages may share one resource
    dictionary, so only the names a page's own content uses count.)"""
    found = []
    with pikepdf.open(io.BytesIO(pdf), password=password) as doc:
        for page in doc.pages:
            content = b"".join(
                stream.read_bytes() for stream in (page.Contents if isinstance(
                    page.Contents, pikepdf.Array) else [page.Contents]))
            drawn = re.findall(rb"(/GdWm[^\s/]*) Do", content)
            forms = [page.Resources.XObject[name.decode()] for name in drawn]
            found.append([float(state.get("/ca", 1)) for form in forms
                          for state in form.Resources.get("/ExtGState", {}).values()])
    return found
