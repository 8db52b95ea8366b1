"""The converter's one settings object: environment `GENDOC_CONVERTER_*`, CLI flags override.

Built once by `gendoc converter` (or the bench) and passed down; nothing below
reads the environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_work_dir() -> Path:
    # tmpfs when there is one: profiles, inputs and outputs are written and read
    # once per conversion, and a RAM-backed directory keeps that off the disk.
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"gendoc-converter-{os.getuid()}"


def _default_soffice() -> str:
    # soffice.bin itself rather than the `soffice` shell wrapper: the pool owns
    # the process, its group and its exit status, with no launcher in between.
    for candidate in ("/usr/lib/libreoffice/program/soffice.bin",
                      "/opt/libreoffice/program/soffice.bin"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("soffice") or "soffice"


class ConverterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENDOC_CONVERTER_", extra="ignore")

    host: str = Field(
        "127.0.0.1",
        description="Address to listen on. Loopback: in a pod the converter serves only its "
        "neighbour container, never the network.",
    )
    port: int = Field(
        3000, description="HTTP port; 3000 is Gotenberg's, so its clients need no change.")

    pool_size: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Warm LibreOffice instances (count). Default: the CPU count, since one "
        "conversion keeps one core busy and more instances than cores only add memory "
        "(about 300 MB RSS each).",
    )
    queue_size: int = Field(
        32,
        ge=0,
        description="Conversions that may wait for a free instance (count); beyond it 429 + "
        "Retry-After. 32 waits are about one second of work for a 2-instance pool on a "
        "one-page document: long enough to absorb a burst, short enough that a caller is "
        "told to retry rather than left waiting past its deadline.",
    )
    max_conversions_per_instance: int = Field(
        1000,
        ge=1,
        description="Replace an instance after this many conversions (count). LibreOffice "
        "slowly accumulates caches; a restart costs about 1-2 s of one core, so 1000 "
        "conversions (over a minute of work) keeps the restart cost under 2%.",
    )
    conversion_timeout: float = Field(
        30.0,
        gt=0,
        description="Longest one conversion may take (seconds) before the instance counts as "
        "hung and is killed. A one-page invoice takes 0.07 s and a 12-page document 0.5 s; "
        "30 s leaves room for large documents. A caller's Gendoc-Timeout header lowers it.",
    )
    request_timeout: float = Field(
        60.0,
        gt=0,
        description="Longest a request may take in all (seconds): queueing plus its "
        "conversions, when the caller sends no Gendoc-Timeout (a caller's value is capped "
        "by it). Gotenberg's --api-timeout plays the same role (30 s there); 60 s lets a "
        "multi-file request through a busy queue.",
    )
    start_timeout: float = Field(
        60.0,
        gt=0,
        description="Longest an instance may take to start and answer over UNO (seconds). "
        "A warm machine needs 1-3 s; a cold disk or a busy node much more.",
    )
    drain_timeout: float = Field(
        20.0,
        ge=0,
        description="On shutdown, how long conversions in flight may finish (seconds) before "
        "the instances are killed. Below Kubernetes' default 30 s grace period.",
    )
    stop_timeout: float = Field(
        5.0,
        gt=0,
        description="How long an instance may take to exit after SIGTERM (seconds) before "
        "SIGKILL.",
    )
    max_instance_rss_mb: int = Field(
        1024,
        ge=0,
        description="Replace an instance whose resident memory exceeds this (MiB; 0 disables). "
        "A warm instance holds about 300 MiB; 1 GiB means something grew without bound.",
    )
    max_failures_in_a_row: int = Field(
        5,
        ge=0,
        description="Replace an instance after this many failed conversions in a row "
        "(count; 0 disables). Every unclear failure is already settled by a probe "
        "document, so this is the safety net for trouble the probe does not show; 5 lets a "
        "caller send a few bad documents without costing an instance (a restart is 1-2 s "
        "of a core).",
    )
    min_free_mb: int = Field(
        4,
        ge=0,
        description="An instance whose work directory's file system has less free space "
        "than this (MiB) counts as failed: a full tmpfs makes every store fail with an I/O "
        "error. 4 MiB is a few one-page conversions' input and output.",
    )
    max_upload_mb: int = Field(
        50,
        gt=0,
        description="Largest single uploaded document (MiB); larger files get 400.",
    )
    max_files: int = Field(
        32,
        gt=0,
        description="Most files one request may convert (count).",
    )
    # A .docx is a zip file: these bound what a hostile one can cost before
    # anything inflates it (gendoc.package_limits, checked from the zip
    # directory alone). Twice the service's: the converter also takes documents
    # the service rendered (images added) and any Gotenberg client's.
    max_zip_entries: int = Field(
        2000, gt=0, description="Most entries in a .docx package (count).")
    max_unzipped_bytes: int = Field(
        200 * 1024 * 1024, gt=0,
        description="Largest declared uncompressed size of a .docx package (bytes).")
    max_compression_ratio: float = Field(
        200.0, gt=1,
        description="Highest uncompressed/compressed size ratio of any package entry of 1 MiB "
        "or more. The best of the 51 docxtpl corpus files is 32:1 (a styles part); deflated "
        "zeros, a bomb, reach about 1000:1.")
    work_dir: Path = Field(
        default_factory=_default_work_dir,
        description="Root of the instances' profile directories and their scratch files. "
        "Default: under /dev/shm (tmpfs) so conversions never touch a disk.",
    )
    soffice: str = Field(
        default_factory=_default_soffice,
        description="Path of the LibreOffice binary (soffice.bin preferred over the wrapper).",
    )
    monitor_interval: float = Field(
        0.5,
        gt=0,
        description="How often idle instances are checked for a dead process (seconds): "
        "bounds how long a crashed idle instance goes unnoticed.",
    )
    soffice_environment: dict[str, str] = Field(
        default_factory=lambda: dict(os.environ),
        repr=False,
        description="The environment each soffice starts from, read once when the settings "
        "are built (default: the converter's own). The instance then sets its own HOME, "
        "TMPDIR and caches inside its work directory and a dead proxy (profile.soffice_env).",
    )
    watermark_font: Path = Field(
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        description="TrueType font of the text watermark, embedded as a subset (PDF/A allows "
        "no unembedded font). Default: DejaVu Sans (Debian's fonts-dejavu-core, in the "
        "converter image), whose glyphs cover Latin, Greek and Cyrillic.",
    )
    log_level: str = Field("info", description="Log level (debug, info, warning, error).")
    log_format: str = Field("text", description="'text' or 'json' (one JSON object per line).")
