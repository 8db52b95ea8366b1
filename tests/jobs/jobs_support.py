"""Helpers of the job tests: a stored template, a submitted job, waiting for it, its zip."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import httpx
from docx_helpers import make_docx, part_texts, store_docx

from gendoc.readiness import wait_until

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FINAL = {"succeeded", "failed", "cancelled"}


def store_template(client: httpx.Client, *paragraphs: str) -> str:
    return store_docx(client, make_docx(*paragraphs), "job")


def submit(client: httpx.Client, template: str, items: list[dict[str, Any]],
           **fields: Any) -> dict[str, Any]:
    r = client.post("/v1/jobs", json={"template": template, "items": items,
                                      "format": "docx", **fields})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    return dict(r.json())


def status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_final(client: httpx.Client, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        body = status(client, job_id)
        return body if body["status"] in FINAL else None
    found = wait_until(final, timeout, interval=0.2, what=f"job {job_id} finished")
    assert isinstance(found, dict)
    return found


def result_zip(client: httpx.Client, job_id: str) -> zipfile.ZipFile:
    r = client.get(f"/v1/jobs/{job_id}/result")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.content))


def numbers_in(archive: zipfile.ZipFile, stem: str) -> list[int]:
    """The number each docx entry of the zip says it was rendered for ("Item N")."""
    found = []
    for name in archive.namelist():
        if name.endswith(".docx"):
            text = " ".join(part_texts(archive.read(name))["word/document.xml"])
            match = re.search(r"Item (\d+)", text)
            assert match, (name, text)
            found.append(int(match.group(1)))
    return found


def metric(client: httpx.Client, name: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))
