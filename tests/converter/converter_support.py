"""Helpers of the converter tests: real `gendoc converter` processes on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from converter.converter_docs import DOCX_TYPE

from gendoc.procs import GendocProcess, free_port, process_table, spawn_gendoc

CONVERT = "/forms/libreoffice/convert"
INVOICE = Path(__file__).resolve().parents[2] / "src" / "gendoc" / "examples" / "invoice.docx"


def start_converter(tmp: Path, pool_size: int = 2, **settings: object) -> GendocProcess:
    port = free_port()
    env = {f"GENDOC_CONVERTER_{k.upper()}": str(v) for k, v in settings.items()}
    env["GENDOC_CONVERTER_WORK_DIR"] = str(tmp / "work")
    return spawn_gendoc(["converter", "--port", str(port), "--pool-size", str(pool_size)],
                        port, "/health", log=tmp / f"converter-{port}.log", env=env, timeout=90)


def docx_file(name: str, data: bytes) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (name, data, DOCX_TYPE))


def pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)"
    found = re.search(rf"^{pattern}$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command) of the processes whose parent is `pid`."""
    return [(p.pid, p.state, p.command) for p in process_table().values() if p.ppid == pid]


def soffice_pids(server: GendocProcess) -> list[int]:
    return [pid for pid, state, cmd in children(server.proc.pid)
            if cmd.startswith("soffice") and state != "Z"]
