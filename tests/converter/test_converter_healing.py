"""The converter heals itself (issue 13): its environment failing under load is never
blamed on a document. Real LibreOffice, real HTTP, clients that retry as told.

For each fault: no document is lost, no good document gets a 4xx, the failed
instances are replaced (counted by reason) and the pool is whole again within
10 s. Bad documents still get their 4xx without costing an instance.
"""

from __future__ import annotations

import io
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from converter.converter_docs import DOCX_TYPE
from converter.converter_support import (
    CONVERT,
    INVOICE,
    Load,
    Outcome,
    PrivateTmpfs,
    discard,
    docx_file,
    empty_temp_dirs,
    failures,
    pool_whole,
    restarts,
    send_invoice,
    soffice_pids,
    start_converter,
)

from gendoc.procs import GendocProcess, free_port
from gendoc.readiness import Abort, wait_until

pytestmark = pytest.mark.libreoffice

# Replacements that mean "the instance failed" (recycling is not among them).
FAILED = ("crash", "timeout", "environment", "probe")
ODT = "application/vnd.oasis.opendocument.text"


@dataclass
class Converter:
    server: GendocProcess
    work: Path


@pytest.fixture(scope="module")
def healing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Converter]:
    tmp = tmp_path_factory.mktemp("healing")
    server = start_converter(tmp, pool_size=2, queue_size=32, monitor_interval=0.2)
    yield Converter(server, tmp / "work")
    server.stop()


def instance_dirs(server: GendocProcess, work: Path) -> list[Path]:
    return sorted((work / f"pool-{server.proc.pid}").glob("instance-*"))


def heal_under_load(server: GendocProcess, work: Path,
                    fault: Callable[[list[Path]], None]) -> tuple[Outcome, float]:
    """Make `fault` on every instance's directory under load; return what the clients saw
    and how long the pool took to be whole again (new processes on both slots)."""
    wait_until(lambda: pool_whole(server, 2), 30, what="pool whole before the fault")
    failed, documents = restarts(server, *FAILED), failures(server, "document")
    victims, old = instance_dirs(server, work), set(soffice_pids(server))
    assert len(victims) == 2 and len(old) == 2
    with Load(server.url, send_invoice, clients=4) as load:
        load.delivered(8)
        fault(victims)
        made = time.monotonic()
        wait_until(lambda: restarts(server, *FAILED) >= failed + 2, 10, interval=0.05,
                   what="both instances replaced")
        wait_until(lambda: pool_whole(server, 2) and old.isdisjoint(soffice_pids(server)), 10,
                   interval=0.05, what="pool whole again")
        healed = time.monotonic() - made
        load.delivered(load.outcome.ok + 8)  # and it goes on converting
    assert failures(server, "document") == documents  # nothing was blamed on a document
    return load.outcome, healed


def remove(name: str) -> Callable[[list[Path]], None]:
    def fault(dirs: list[Path]) -> None:
        for directory in dirs:
            discard(directory / name)

    return fault


@pytest.mark.parametrize("fault", [
    pytest.param(empty_temp_dirs, id="temp-files-removed"),
    pytest.param(remove("tmp"), id="temp-dir-removed"),
    pytest.param(remove("scratch"), id="scratch-dir-removed"),
])
def test_files_removed_under_load(healing: Converter,
                                  fault: Callable[[list[Path]], None]) -> None:
    outcome, healed = heal_under_load(healing.server, healing.work, fault)
    assert outcome.failures == [], outcome
    assert healed < 10
    print(f"\nMEASURED files removed: healed in {healed:.1f}s, {outcome}")


def test_temp_folder_removed_from_idle_instances(healing: Converter) -> None:
    """LibreOffice's lu*.tmp removed while no conversion runs: the watcher replaces both
    instances before a request could fail on them (an instance that needs no temp file for
    a while would otherwise go on with its folder gone)."""
    server = healing.server
    wait_until(lambda: pool_whole(server, 2), 30, what="pool whole before the fault")
    failed, old = restarts(server, "environment"), set(soffice_pids(server))
    folders = [lu for d in instance_dirs(server, healing.work) for lu in (d / "tmp").glob("lu*")]
    assert len(folders) >= 2, folders  # one per instance (and any a frozen dir kept)
    for folder in folders:
        discard(folder)
    wait_until(lambda: restarts(server, "environment") >= failed + 2, 10,
               what="both instances replaced for their environment")
    wait_until(lambda: pool_whole(server, 2) and old.isdisjoint(soffice_pids(server)), 30,
               what="pool whole again")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert send_invoice(client).status_code == 200


def test_profile_made_read_only_under_load(healing: Converter) -> None:
    # chattr +i: refused even to root (plain permissions are not); the test's directory is
    # on a file system that has it (the store test relies on the same).
    frozen: list[Path] = []

    def freeze(dirs: list[Path]) -> None:
        for directory in dirs:
            subprocess.run(["chattr", "-R", "+i", str(directory / "profile")], check=True)
            frozen.append(directory)

    try:
        outcome, healed = heal_under_load(healing.server, healing.work, freeze)
    finally:
        for directory in frozen:
            subprocess.run(["chattr", "-R", "-i", str(directory / "profile")], check=True)
    assert outcome.failures == [], outcome
    assert healed < 10
    print(f"\nMEASURED profile read-only: healed in {healed:.1f}s, {outcome}")
    # The frozen directories could not be removed, and did not stand in the successors' way.
    assert all(d.exists() for d in frozen)
    assert len(instance_dirs(healing.server, healing.work)) == 4


def test_full_file_system_under_load(tmp_path: Path) -> None:
    """The work directory on a 16 MiB tmpfs that fills up: every instance is unusable
    until space comes back; clients get 503 + Retry-After meanwhile, then their PDFs."""
    work = tmp_path / "work"
    with PrivateTmpfs(work, 16) as tmpfs:
        server = start_converter(tmp_path, pool_size=2, queue_size=32, monitor_interval=0.2,
                                 prefix=tmpfs.prefix)
        try:
            wait_until(lambda: pool_whole(server, 2), 30, what="pool whole")
            failed = restarts(server, *FAILED)
            filler = tmpfs.outside(work / "filler")
            with Load(server.url, send_invoice, clients=4) as load:
                load.delivered(8)
                with filler.open("wb") as out, pytest.raises(OSError, match="No space"):
                    while True:  # until the file system refuses (ENOSPC)
                        out.write(b"\0" * 1024 * 1024)
                        out.flush()
                wait_until(lambda: restarts(server, *FAILED) >= failed + 2, 10,
                           what="both instances replaced")
                wait_until(lambda: httpx.get(server.url + "/health").json()["status"] == "down",
                           10, interval=0.02, what="/health down while no instance can serve")
                filler.unlink()
                freed = time.monotonic()
                wait_until(lambda: pool_whole(server, 2), 10, interval=0.05,
                           what="pool whole again")
                healed = time.monotonic() - freed
                load.delivered(load.outcome.ok + 8)
            assert load.outcome.failures == [], load.outcome
            assert load.outcome.refusals.get(503, 0) > 0  # told to come back, then served
            assert healed < 10
            assert failures(server, "document") == 0
            print(f"\nMEASURED full file system: healed in {healed:.1f}s, {load.outcome}")
        finally:
            server.stop()


def corrupt_odt() -> bytes:
    """A package LibreOffice recognises as ODF whose content does not parse."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as odt:
        odt.writestr("mimetype", ODT)
        odt.writestr("content.xml", "<office:document-content")
        odt.writestr("META-INF/manifest.xml", (
            '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
            'opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" '
            f'manifest:media-type="{ODT}"/><manifest:file-entry manifest:full-path='
            '"content.xml" manifest:media-type="text/xml"/></manifest:manifest>'))
    return out.getvalue()


@pytest.fixture(scope="module")
def encrypted_odt(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """An ODT saved by LibreOffice itself with a password (ODF encryption)."""
    from gendoc_converter import profile
    from gendoc_converter.instance import Instance, _props, probe_document
    from gendoc_converter.settings import ConverterSettings

    tmp = tmp_path_factory.mktemp("encrypted")
    settings = ConverterSettings()
    template = tmp / "template"
    profile.make_template(settings.soffice, template, settings.soffice_environment, 60)
    instance = Instance(0, 0, soffice=settings.soffice, template=template, root=tmp,
                        start_timeout=60, stop_timeout=5,
                        environment=settings.soffice_environment)
    instance.start()
    try:
        src, dst = tmp / "plain.docx", tmp / "secret.odt"
        src.write_bytes(probe_document())
        doc = instance._desktop.loadComponentFromURL(src.as_uri(), "_blank", 0,
                                                     _props(Hidden=True))
        doc.storeToURL(dst.as_uri(), _props(FilterName="writer8", Password="secret"))
        doc.close(True)
    finally:
        instance.stop()
    return dst.read_bytes()


def test_bad_documents_get_400_and_cost_no_instance(healing: Converter,
                                                    encrypted_odt: bytes) -> None:
    server = healing.server
    wait_until(lambda: pool_whole(server, 2), 30, what="pool whole")
    pids, documents = set(soffice_pids(server)), failures(server, "document")
    replaced = restarts(server, *FAILED, "failures")
    cases = [
        ("corrupt.odt", corrupt_odt(), ODT),
        ("password.odt", encrypted_odt, ODT),
        ("empty.docx", b"", DOCX_TYPE),
        ("empty.odt", b"", ODT),
        ("truncated.docx", INVOICE.read_bytes()[:5000], DOCX_TYPE),
    ]
    for name, data, media in cases:
        response = httpx.post(server.url + CONVERT, files=[("files", (name, data, media))],
                              timeout=60)
        assert response.status_code == 400, (name, response.text)
        assert response.text
    # The two that reached LibreOffice were judged by the probe; the others never got there.
    assert failures(server, "document") == documents + 2
    assert restarts(server, *FAILED, "failures") == replaced
    assert set(soffice_pids(server)) == pids
    # And the instances still convert.
    ok = httpx.post(server.url + CONVERT, files=[docx_file("ok.docx", INVOICE.read_bytes())],
                    timeout=60)
    assert ok.status_code == 200



def start_gotenberg(tmp: Path, prefix: list[str]) -> GendocProcess:
    """A real Gotenberg 8 as shipped (one LibreOffice, restarted every 10 conversions, its
    temp files in TMPDIR, i.e. /tmp), built once by scripts/gotenberg.sh."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "gotenberg.sh"
    built = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, check=True,
                           timeout=1800)
    launcher = built.stdout.decode().strip().splitlines()[-1]
    port = free_port()
    log = tmp / f"gotenberg-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*prefix, launcher, "--api-port", str(port), "--api-bind-ip", "127.0.0.1",
             "--libreoffice-auto-start", "--gotenberg-hide-banner"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = GendocProcess(f"http://127.0.0.1:{port}", proc, log)

    def up() -> bool:
        if proc.poll() is not None:
            raise Abort(f"gotenberg exited with {proc.returncode}: {server.logs()[-2000:]}")
        health = httpx.get(server.url + "/health", timeout=2).json()
        return bool(health["details"]["libreoffice"]["status"] == "up")

    try:
        wait_until(up, 120, interval=0.1, what="gotenberg up")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.mark.slow
def test_beside_a_real_gotenberg_cleaning_the_same_tmp(tmp_path: Path) -> None:
    """Both under load, sharing one /tmp (a private tmpfs, so that Gotenberg's cleaning
    reaches nothing else on this machine). Gotenberg deletes `*.tmp` and `OSL_PIPE*`
    there on each LibreOffice restart; ours keeps only its UNO pipes there and restarts
    its own instances every 20 conversions meanwhile: 0 failures."""
    tmp = Path("/tmp")
    with PrivateTmpfs(tmp, 512) as shared:
        # What our instances' lu*.tmp and pipes would be: Gotenberg's cleaning removes them.
        canaries = [shared.outside(tmp / "lu-canary.tmp"),
                    shared.outside(tmp / "OSL_PIPE_0_canary")]
        for canary in canaries:
            canary.mkdir()
        ours = start_converter(tmp_path, pool_size=2, queue_size=32, prefix=shared.prefix,
                               work_dir=tmp / "gendoc-converter",
                               max_conversions_per_instance=20)
        gotenberg = start_gotenberg(tmp_path, shared.prefix)
        try:
            with Load(ours.url, send_invoice, clients=3) as load, \
                    Load(gotenberg.url, send_invoice, clients=2) as theirs:
                # At least 3 of its restarts and cleanings (its own failures are not ours).
                theirs.delivered(40, timeout=180, fail_fast=False)
                load.delivered(load.outcome.ok + 40, timeout=120)
            assert not any(canary.exists() for canary in canaries)  # it did clean /tmp
            assert load.outcome.failures == [] and load.outcome.refusals == {}, load.outcome
            assert failures(ours, "instance") == failures(ours, "document") == 0
            assert restarts(ours, *FAILED) == 0
            assert restarts(ours, "max_conversions") >= 2
            print(f"\nMEASURED beside Gotenberg: ours {load.outcome}, "
                  f"Gotenberg {theirs.outcome.ok} PDFs, {len(theirs.outcome.failures)} failed")
        finally:
            gotenberg.stop()
            ours.stop()
