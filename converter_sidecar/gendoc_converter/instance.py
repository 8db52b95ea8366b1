"""One warm LibreOffice: its process, its private directories, its UNO connection.

Every method except `kill`, `alive` and `environment_fault` blocks and is called
from the one thread that owns the instance (pool.py), so the UNO bridge is never
shared between threads. `kill` is safe from anywhere: it is how a hung
conversion is ended.

A failed conversion is sorted here, on the spot, into the document's fault
(UnreadableDocument: a 4xx) or the instance's (InstanceFailed: the pool replaces
the instance and retries elsewhere). When LibreOffice's message does not settle
it, a known-good probe document on the same instance does.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gendoc.readiness import Abort, NotReady, wait_until

from . import policy, profile
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


@functools.cache
def probe_document() -> bytes:
    """The known-good probe: a minimal one-paragraph .docx (pure, built once).

    Converted once at start (which also loads Writer's and the PDF filter's libraries
    before the first request) and after every failure whose cause is unclear."""
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
            "<w:t>gendoc converter probe</w:t></w:r></w:p></w:body></w:document>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return out.getvalue()


class LoadFailed(Exception):
    """LibreOffice returned no document: whose fault it is, the probe decides."""


class Instance:
    """A soffice process reached over a private named pipe, owning one work directory.

    Everything it writes lives under `dir` (`instance-INDEX.GENERATION`): `profile`,
    `home` (HOME, fontconfig's cache), `tmp` (TMPDIR: LibreOffice's `lu*.tmp`) and
    `scratch` (the document in, the PDF out). A successor gets a new directory, so a
    predecessor's directory that cannot be removed (made read-only under it) never
    stands in its way; `cleanup` removes it when the instance goes.
    """

    def __init__(self, index: int, generation: int, *, soffice: str, template: Path,
                 root: Path, start_timeout: float, stop_timeout: float,
                 environment: Mapping[str, str] | None = None, min_free_mb: int = 0) -> None:
        self.index, self.generation = index, generation
        self.name = f"lo{index}.{generation}"
        self.conversions = 0
        self.failures_in_a_row = 0
        self._soffice, self._template = soffice, template
        self._start_timeout, self._stop_timeout = start_timeout, stop_timeout
        # Nothing is inherited unless the caller passes it (ConverterSettings does).
        self._environment = dict(environment or {})
        self._min_free = min_free_mb * 1024 * 1024
        self.dir = root / f"instance-{index}.{generation}"
        self.profile = self.dir / "profile"
        self.home = self.dir / "home"
        self.tmp = self.dir / "tmp"
        self.scratch = self.dir / "scratch"
        self._pipe = profile.accept_pipe(os.getpid(), index)
        self._proc: subprocess.Popen[bytes] | None = None
        self._desktop: Any = None
        # Inodes of its own directories and of LibreOffice's temp folder, as made at start.
        self._inodes: dict[Path, int] = {}

    # -- lifecycle ------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch soffice and return once a real UNO call answers and the probe converts."""
        t0 = time.monotonic()
        accept = f"pipe,name={self._pipe};urp;StarOffice.ComponentContext"
        try:
            shutil.rmtree(self.dir, ignore_errors=True)
            profile.clone(self._template, self.profile)
            for own in (self.home, self.tmp, self.scratch):
                own.mkdir(parents=True)
            self._inodes = {own: own.stat().st_ino for own in self._own()}
            self._proc = subprocess.Popen(
                profile.soffice_args(self._soffice, self.profile, accept),
                env=profile.soffice_env(self._environment, self.home, self.tmp),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                # Its own process group: kill -9 reaches soffice and anything it spawned.
                start_new_session=True,
            )
            self._connect(accept, t0 + self._start_timeout)
            # The probe doubles as the warm-up: Writer's and the PDF filter's libraries
            # are loaded before the first real request.
            failed = self.probe()
            if failed:
                raise StartFailed(f"{self.name}: the probe document did not convert: {failed}")
            # LibreOffice keeps its temp files in one lu*.tmp folder it made in our tmp by
            # now; a cleaner that removes it (Gotenberg, tmpreaper) breaks the next write that
            # needs one, sometimes many conversions later. Watched like our own directories,
            # so the instance is replaced when it is noticed, not when a conversion fails.
            self._inodes.update({lu: lu.stat().st_ino for lu in self.tmp.glob("lu*.tmp")
                                 if lu.is_dir()})
        except BaseException:
            self.kill()  # whatever went wrong, no process outlives a failed start
            self.reap()
            self.cleanup()
            raise
        self.conversions = 0
        log.info("instance %s ready (pid %s) in %.2fs", self.name, self.pid,
                 time.monotonic() - t0)

    def _connect(self, accept: str, deadline: float) -> None:
        """Wait until the office answers a real UNO call, or its start timeout passes."""
        proc = self._proc
        assert proc is not None
        uno = _uno()
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        pipe = profile.PIPE_DIR / f"OSL_PIPE_{os.getuid()}_{self._pipe}"
        seen = False

        def answers() -> bool:
            nonlocal seen
            if proc.poll() is not None:
                raise Abort(f"soffice exited with {proc.returncode} while starting")
            seen = seen or pipe.exists()
            if seen and not pipe.exists():
                # Something cleaning /tmp removed the pipe before we connected: it
                # would never answer, so fail now and let the pool start another.
                raise Abort(f"its UNO pipe {pipe} was removed before it answered")
            ctx = resolver.resolve(f"uno:{accept}")  # NoConnectException until it listens
            desktop = ctx.ServiceManager.createInstanceWithContext(
                "com.sun.star.frame.Desktop", ctx)
            desktop.getComponents()  # a real round trip: the office answers
            self._desktop = desktop
            return True

        try:
            wait_until(answers, max(deadline - time.monotonic(), 0.0), interval=0.05,
                       what=f"{self.name} answering over UNO")
        except Abort as exc:
            raise StartFailed(f"{self.name}: {exc}") from None
        except NotReady as exc:
            raise StartFailed(f"{self.name}: no UNO answer after {self._start_timeout:.0f}s "
                              f"({exc.__cause__})") from None

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
        profile.remove_pipes(self.profile, self._pipe)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():
            # Made read-only or immutable under it: the next start uses a new directory.
            log.warning("could not remove %s; its successor uses a directory of its own",
                        self.dir)

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

    def environment_fault(self) -> str | None:
        """What is wrong with the instance's own directories, or None (cheap: a few stats).

        Missing (a cleaner removed it), not writable (read-only mount, immutable: root
        ignores plain permissions, access(2) does not ignore these), or a full file system.
        """
        for watched, made in self._inodes.items():
            try:
                inode = watched.stat().st_ino
            except OSError:
                return f"its directory {watched.name} is missing"
            if inode != made:
                # Removed under it, then made again (LibreOffice makes the folder it
                # stores into): whatever it kept there is gone.
                return f"its directory {watched.name} was removed"
        for own in self._own():
            if not os.access(own, os.W_OK):
                return f"its directory {own.name} is not writable"
        user = self.profile / "user"
        if user.is_dir() and not os.access(user, os.W_OK):
            return "its profile is not writable"
        if self._min_free:
            try:
                stat = os.statvfs(self.dir)
            except OSError as exc:
                return f"its work directory cannot be read: {exc}"
            if stat.f_bavail * stat.f_frsize < self._min_free:
                return "its work directory's file system is full"
        return None

    def _own(self) -> tuple[Path, ...]:
        return (self.profile, self.home, self.tmp, self.scratch)

    # -- work -------------------------------------------------------------------
    def convert(self, document: bytes, suffix: str, options: ConversionOptions) -> bytes:
        """Convert one document to PDF.

        Raises UnreadableDocument when the document is at fault, InstanceFailed when
        the instance is (then nothing was blamed on the document).
        """
        fault = self.environment_fault()
        if fault:
            raise InstanceFailed("environment", f"{self.name}: {fault}")
        src = self.scratch / f"in{suffix}"
        dst = self.scratch / "out.pdf"
        self.conversions += 1
        try:
            pdf = self._convert_file(document, src, dst, options)
        except UnreadableDocument:
            self.failures_in_a_row += 1
            raise
        finally:
            for path in (src, dst):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
        self.failures_in_a_row = 0
        return pdf

    def _convert_file(self, document: bytes, src: Path, dst: Path,
                      options: ConversionOptions) -> bytes:
        try:
            src.write_bytes(document)
        except OSError as exc:
            raise InstanceFailed("environment",
                                 f"{self.name} cannot write its scratch file: {exc}") from None
        try:
            self._export(src, dst, options)
        except InstanceFailed:
            raise
        except Exception as exc:
            raise self._diagnose(exc) from None
        try:
            return dst.read_bytes()
        except OSError as exc:
            raise InstanceFailed("environment",
                                 f"{self.name} cannot read its output: {exc}") from None

    def _diagnose(self, exc: Exception) -> Exception:
        """Whose fault a failed export is: the instance's (InstanceFailed) or the document's."""
        detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LoadFailed) else str(exc)
        if not self.alive() or _is_disposed(exc):
            return InstanceFailed("crash", f"{self.name}: {detail}")
        fault = self.environment_fault()
        if fault:
            return InstanceFailed("environment", f"{self.name}: {fault} ({detail})")
        if policy.blame(detail) == "instance":
            return InstanceFailed("environment", f"{self.name}: I/O error on its own files "
                                  f"({detail})")
        failed = self.probe()
        if failed:
            return InstanceFailed("probe", f"{self.name} failed the probe document ({failed}) "
                                  f"after: {detail}")
        return UnreadableDocument(f"LibreOffice could not convert the document: {detail}")

    def probe(self) -> str | None:
        """Convert the known-good probe document; None when it worked, else what went wrong."""
        src = self.scratch / "probe.docx"
        dst = self.scratch / "probe.pdf"
        try:
            src.write_bytes(probe_document())
            self._export(src, dst, ConversionOptions())
            if not dst.read_bytes().startswith(b"%PDF"):
                return "its output is not a PDF"
            return None
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            for path in (src, dst):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)

    def _export(self, src: Path, dst: Path, options: ConversionOptions) -> None:
        uno = _uno()
        if self._desktop is None:
            raise InstanceFailed("crash", f"{self.name} is not connected")
        doc = self._desktop.loadComponentFromURL(
            src.as_uri(), "_blank", 0,
            _props(Hidden=True, ReadOnly=True, UpdateDocMode=0, MacroExecutionMode=0),
        )
        if doc is None:
            raise LoadFailed("LibreOffice could not load the document")
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
