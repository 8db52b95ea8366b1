"""LibreOffice user profiles: the locked-down configuration every instance starts from.

A template profile is initialised once per pool (LibreOffice's first start
exits with code 81 after creating it); each instance then gets a fresh copy, so
a restart never inherits a lock file, a recovery entry or a cache from the
instance it replaces.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

# LibreOffice exits with this code after it has created a new profile and wants
# to be restarted (desktop/source/app: EXITHELPER_NORMAL_RESTART).
FIRST_START_EXIT = 81

# A closed port on loopback: any fetch LibreOffice attempts despite everything
# else goes to a proxy that refuses the connection. Port 9 is "discard".
DEAD_PROXY = ("127.0.0.1", 9)

# (path, property, type, value). Keys checked against the schema LibreOffice
# ships (share/registry/main.xcd of 7.4).
SCRIPTING = "/org.openoffice.Office.Common/Security/Scripting"
REGISTRY: list[tuple[str, str, str, str]] = [
    # Macros never run: "very high" security (only trusted locations, none
    # configured) and macro execution switched off altogether.
    (SCRIPTING, "MacroSecurityLevel", "int", "3"),
    (SCRIPTING, "DisableMacrosExecution", "boolean", "true"),
    # Do not load content (images, linked sections) linked from a document that
    # came from an untrusted location (CVE-2012-5639; Gotenberg sets it too).
    (SCRIPTING, "BlockUntrustedRefererLinks", "boolean", "true"),
    (SCRIPTING, "ExecutePlugins", "boolean", "false"),
    # Links and fields that pull in other files are never refreshed on load
    # (Writer/Calc Content/Update/Link: 0 always, 1 on request, 2 never).
    ("/org.openoffice.Office.Writer/Content/Update", "Link", "int", "2"),
    ("/org.openoffice.Office.Calc/Content/Update", "Link", "int", "2"),
    # Every network access that slips through goes to a dead proxy.
    ("/org.openoffice.Inet/Settings", "ooInetProxyType", "int", "2"),
    ("/org.openoffice.Inet/Settings", "ooInetNoProxy", "string", ""),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPProxyName", "string", DEAD_PROXY[0]),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPProxyPort", "int", str(DEAD_PROXY[1])),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPSProxyName", "string", DEAD_PROXY[0]),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPSProxyPort", "int", str(DEAD_PROXY[1])),
    ("/org.openoffice.Inet/Settings", "ooInetFTPProxyName", "string", DEAD_PROXY[0]),
    ("/org.openoffice.Inet/Settings", "ooInetFTPProxyPort", "int", str(DEAD_PROXY[1])),
    # No update checks, no crash reporter, no first-start or tip dialogs.
    ("/org.openoffice.Office.Update/Update", "Enabled", "boolean", "false"),
    ("/org.openoffice.Office.Common/Misc", "CrashReport", "boolean", "false"),
    ("/org.openoffice.Office.Common/Misc", "FirstRun", "boolean", "false"),
    ("/org.openoffice.Office.Common/Misc", "ShowTipOfTheDay", "boolean", "false"),
    # No auto-recovery or auto-save: nothing of a document outlives its conversion.
    ("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled", "boolean", "false"),
    ("/org.openoffice.Office.Recovery/AutoSave", "Enabled", "boolean", "false"),
    # No document lock files (documents are opened read-only from a private
    # directory; a killed instance must leave nothing behind).
    ("/org.openoffice.Office.Common/Misc", "UseLocking", "boolean", "false"),
    ("/org.openoffice.Office.Common/Misc", "UseDocumentOOoLockFile", "boolean", "false"),
    ("/org.openoffice.Office.Common/Misc", "UseDocumentSystemFileLocking", "boolean", "false"),
    # Ignore printer settings stored in documents: no printer lookup per load.
    ("/org.openoffice.Office.Common/Save/Document", "LoadPrinter", "boolean", "false"),
]


def registry_xml(items: list[tuple[str, str, str, str]] = REGISTRY) -> str:
    """registrymodifications.xcu for `items` (pure)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
    ]
    for path, name, kind, value in items:
        lines.append(
            f'<item oor:path="{escape(path)}"><prop oor:name="{escape(name)}" oor:op="fuse" '
            f'oor:type="xs:{kind}"><value>{escape(value)}</value></prop></item>'
        )
    lines.append("</oor:items>")
    return "\n".join(lines) + "\n"


def write_registry(profile: Path, items: list[tuple[str, str, str, str]] = REGISTRY) -> None:
    user = profile / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "registrymodifications.xcu").write_text(registry_xml(items), encoding="utf-8")


_SETUP_VERSION = re.compile(r'<prop oor:name="ooSetupVersion">\s*<value>(\d+\.\d+)</value>')


def product_version(soffice: str) -> str | None:
    """LibreOffice's "major.minor", as its own configuration states it, or None.

    Read from `share/registry/main.xcd` beside `program/` (where ooSetupVersion is set).
    """
    binary = Path(shutil.which(soffice) or soffice).resolve()
    try:
        text = (binary.parent.parent / "share" / "registry" / "main.xcd").read_text(
            encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _SETUP_VERSION.search(text)
    return found.group(1) if found else None


def first_start_done(version: str | None) -> list[tuple[str, str, str, str]]:
    """Registry items that mark a profile as already started by this version (pure).

    Without them every start of a fresh profile counts as the first after an upgrade
    (utl::isProductVersionUpgraded: ooSetupLastVersion below the product's), and
    LibreOffice 7.4 then runs its 109 graphics render tests before it answers:
    measured 1.55 s of CPU of a 1.6 s start, 0.3 s without them
    (desktop/source/app/app.cxx, runGraphicsRenderTests).
    """
    if version is None:
        return []
    return [("/org.openoffice.Setup/Product", "ooSetupLastVersion", "string", version)]


def soffice_args(soffice: str, profile: Path, accept: str | None) -> list[str]:
    # soffice runs in a session of its own (so that a kill reaches its whole group),
    # which also means it would outlive a converter that is SIGKILLed. setpriv (util-
    # linux) asks the kernel to SIGKILL it when the thread that started it dies.
    setpriv = shutil.which("setpriv")
    guard = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    args = [
        *guard, soffice, "--headless", "--invisible", "--nologo", "--nodefault", "--norestore",
        "--nolockcheck", "--nocrashreport", "--nofirststartwizard",
        f"-env:UserInstallation={profile.resolve().as_uri()}",
    ]
    if accept:
        args.append(f"--accept={accept}")
    return args


def soffice_env(base: Mapping[str, str], home: Path, tmp: Path) -> dict[str, str]:
    """The environment of a soffice process: its own HOME and temp directory, no inherited
    proxies (a dead one for libcurl).

    LibreOffice keeps its temp files (`lu*.tmp`: every store goes through them) in
    TMPDIR. A shared /tmp is cleaned by others: a real Gotenberg on the same host deletes
    `*.tmp` and `OSL_PIPE*` there on each of its restarts, tmpreaper and
    systemd-tmpfiles age them out. So each instance has a TMPDIR of its own.
    """
    env = {k: v for k, v in base.items()
           if not k.lower().endswith("_proxy") and not k.startswith("XDG_")}
    dead = f"http://{DEAD_PROXY[0]}:{DEAD_PROXY[1]}"
    env.update(http_proxy=dead, https_proxy=dead, ftp_proxy=dead, all_proxy=dead, no_proxy="",
               HOME=str(home), TMPDIR=str(tmp), TMP=str(tmp), TEMP=str(tmp),
               SAL_USE_VCLPLUGIN="svp")
    return env


# Where LibreOffice's osl layer creates its named pipes: /tmp whenever it is writable,
# whatever TMPDIR says (sal/osl/unx/pipe.cxx, PIPEDEFAULTPATH). The only thing of an
# instance outside its work directory; instance.py copes with a cleaner removing it.
PIPE_DIR = Path("/tmp")


def pipe_files(profile: Path, accept_pipe: str | None = None, uid: int | None = None) -> list[Path]:
    """The named pipes a soffice on `profile` creates, so they can be removed after it (pure).

    Its single-instance pipe is named after the MD5 of the profile URL in UTF-16LE,
    each byte in hex without padding (desktop/source/app/officeipcthread.cxx).
    """
    uid = os.getuid() if uid is None else uid
    digest = hashlib.md5(profile.resolve().as_uri().encode("utf-16-le"), usedforsecurity=False)
    names = ["SingleOfficeIPC_" + "".join(f"{b:x}" for b in digest.digest())]
    if accept_pipe:
        names.append(accept_pipe)
    return [PIPE_DIR / f"OSL_PIPE_{uid}_{name}" for name in names]


def accept_pipe(pid: int, index: int) -> str:
    """Name of the pipe instance `index` of converter process `pid` accepts UNO on (pure)."""
    return f"gendoc-converter-{pid}-{index}"


def remove_pipes(profile: Path, accept_pipe: str | None = None) -> None:
    for path in pipe_files(profile, accept_pipe):
        with contextlib.suppress(OSError):
            path.unlink()


def make_template(soffice: str, template: Path, base_env: Mapping[str, str],
                  timeout: float) -> None:
    """Create the initialised, locked-down profile that instances copy."""
    shutil.rmtree(template, ignore_errors=True)
    write_registry(template, REGISTRY + first_start_done(product_version(soffice)))
    # The initialising soffice gets a HOME and TMPDIR of its own too, removed after it.
    scratch = template.with_name(template.name + ".run")
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            [*soffice_args(soffice, template, None), "--terminate_after_init"],
            env=soffice_env(base_env, scratch, scratch), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, check=False,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if proc.returncode not in (0, FIRST_START_EXIT):
        raise RuntimeError(
            f"LibreOffice could not initialise a profile (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace')[-2000:]}"
        )
    remove_pipes(template)
    for stale in (template / "user" / ".lock", template / ".lock"):
        stale.unlink(missing_ok=True)
    log.debug("template profile ready at %s (first start exit %s)", template, proc.returncode)


def clone(template: Path, profile: Path) -> None:
    """A fresh copy of the template: no lock, cache or recovery file of a predecessor."""
    shutil.rmtree(profile, ignore_errors=True)
    shutil.copytree(template, profile, symlinks=True)
