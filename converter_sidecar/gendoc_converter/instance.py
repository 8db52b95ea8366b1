"""One warm LibreOffice: its process, its private profile, its UNO connection.

Every method except `kill` and `alive` blocks and is called from the one thread
that owns the instance (pool.py), so the UNO bridge is never shared between
threads. `kill` is safe from anywhere: it is how a hung conversion is ended.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

from . import profile
from .errors import InstanceFailed, StartFailed, UnreadableDocument
from .options import ConversionOptions, filter_data

log = logging.getLogger(__name__)

def _uno() -> Any:
    # Imported lazily: only Debian's python3 with python3-uno has it, and the
    # pure parts of this package (and their tests) must import without it.
    import uno

    return uno


def _props(**values: object) -> tuple[Any, ...]:
    from com.sun.star.beans import PropertyValue

    out = []
    for name, value in values.items():
        p = PropertyValue()
        p.Name, p.Value = name, value
        out.append(p)
    return tuple(out)


def warmup_document() -> bytes:
    """A minimal one-paragraph .docx, converted once at start so Writer's and the PDF
    filter's libraries are loaded before the first real request (pure)."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>'
        ),
        "word/document.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{w}"><w:body><w:p><w:r>'
            "<w:t>gendoc converter warm-up</w:t></w:r></w:p></w:body></w:document>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return out.getvalue()


class Instance:
    """A soffice process with its own profile, reached over a private named pipe."""

    def __init__(self, index: int, generation: int, *, soffice: str, template: Path,
                 root: Path, start_timeout: float, stop_timeout: float) -> None:
        self.index, self.generation = index, generation
        self.name = f"lo{index}.{generation}"
        self.conversions = 0
        self._soffice, self._template = soffice, template
        self._start_timeout, self._stop_timeout = start_timeout, stop_timeout
        # One directory per slot, reused by its successors after a fresh clone:
        # a restart starts from a clean profile, and nothing accumulates.
        self.dir = root / f"instance-{index}"
        self._profile = self.dir / "profile"
        self._scratch = self.dir / "scratch"
        self._pipe = profile.accept_pipe(os.getpid(), index)
        self._proc: subprocess.Popen[bytes] | None = None
        self._desktop: Any = None

    # -- lifecycle ------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch soffice and return once a real UNO call answers (never a fixed sleep)."""
        t0 = time.monotonic()
        profile.clone(self._template, self._profile)
        shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch.mkdir(parents=True)
        accept = f"pipe,name={self._pipe};urp;StarOffice.ComponentContext"
        self._proc = subprocess.Popen(
            profile.soffice_args(self._soffice, self._profile, accept),
            env=profile.soffice_env(dict(os.environ), self._profile),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own process group: kill -9 reaches soffice and anything it spawned.
            start_new_session=True,
        )
        try:
            self._connect(accept, t0 + self._start_timeout)
            self.convert(warmup_document(), ".docx", ConversionOptions())
        except BaseException:
            self.kill()  # whatever went wrong, no process outlives a failed start
            self.reap()
            raise
        self.conversions = 0
        log.info("instance %s ready (pid %s) in %.2fs", self.name, self._proc.pid,
                 time.monotonic() - t0)

    def _connect(self, accept: str, deadline: float) -> None:
        """Poll until the office answers a real UNO call, or its start timeout passes."""
        assert self._proc is not None
        uno = _uno()
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        while True:
            if self._proc.poll() is not None:
                raise StartFailed(f"{self.name}: soffice exited with {self._proc.returncode} "
                                  "while starting")
            try:
                ctx = resolver.resolve(f"uno:{accept}")
                smgr = ctx.ServiceManager
                self._desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
                self._desktop.getComponents()  # a real round trip: the office answers
                return
            except Exception as exc:  # NoConnectException until it listens
                if time.monotonic() >= deadline:
                    raise StartFailed(f"{self.name}: no UNO answer after "
                                      f"{self._start_timeout:.0f}s ({exc})") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the instance's process group (works on a SIGSTOPped one too)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=self._stop_timeout)

    def stop(self) -> None:
        """Terminate, wait with a time limit, kill, reap; then remove what it left."""
        self._desktop = None
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers in its group
            proc.wait()
        self.cleanup()

    def cleanup(self) -> None:
        profile.remove_pipes(self._profile, self._pipe)
        shutil.rmtree(self.dir, ignore_errors=True)

    def rss_mb(self) -> float | None:
        if not self.alive() or self._proc is None:
            return None
        try:
            with open(f"/proc/{self._proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    # -- work -------------------------------------------------------------------
    def convert(self, document: bytes, suffix: str, options: ConversionOptions) -> bytes:
        """Convert one document to PDF; raises UnreadableDocument or InstanceFailed('crash')."""
        src = self._scratch / f"in{suffix}"
        dst = self._scratch / "out.pdf"
        src.write_bytes(document)
        try:
            self._export(src, dst, options)
            return dst.read_bytes()
        except UnreadableDocument:
            if not self.alive():
                raise InstanceFailed("crash", f"{self.name} died loading the document") from None
            raise
        except Exception as exc:
            if not self.alive() or _is_disposed(exc):
                raise InstanceFailed("crash", f"{self.name}: {type(exc).__name__}: {exc}") from None
            raise UnreadableDocument(f"LibreOffice could not convert the document: {exc}") from None
        finally:
            src.unlink(missing_ok=True)
            dst.unlink(missing_ok=True)
            self.conversions += 1

    def _export(self, src: Path, dst: Path, options: ConversionOptions) -> None:
        uno = _uno()
        if self._desktop is None:
            raise InstanceFailed("crash", f"{self.name} is not connected")
        doc = self._desktop.loadComponentFromURL(
            src.as_uri(), "_blank", 0,
            _props(Hidden=True, ReadOnly=True, UpdateDocMode=0, MacroExecutionMode=0),
        )
        if doc is None:
            raise UnreadableDocument("LibreOffice could not load the document")
        try:
            if options.landscape:
                _landscape(doc)
            args = {"FilterName": "writer_pdf_Export"}
            data = filter_data(options)
            store = _props(**args)
            if data:
                fd = uno.Any("[]com.sun.star.beans.PropertyValue", _props(**dict(data)))
                store = (*store, *_props(FilterData=fd))
                uno.invoke(doc, "storeToURL", (dst.as_uri(), store))
            else:
                doc.storeToURL(dst.as_uri(), store)
        finally:
            try:
                doc.close(True)
            except Exception:
                with contextlib.suppress(Exception):
                    doc.dispose()


def _landscape(doc: Any) -> None:
    """Turn every page style of a text document to landscape (width > height)."""
    if not hasattr(doc, "getStyleFamilies"):
        return
    styles = doc.getStyleFamilies().getByName("PageStyles")
    for name in styles.getElementNames():
        style = styles.getByName(name)
        if not style.isInUse():
            continue
        width, height = style.Width, style.Height
        style.IsLandscape = True
        style.Width, style.Height = max(width, height), min(width, height)


def _is_disposed(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return "Disposed" in text or "bridge" in text.lower()
