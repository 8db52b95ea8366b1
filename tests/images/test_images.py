"""The three images: linted, their install steps are the ones CI runs, their commands work.

No Docker engine runs here, so the images are not built; instead the Debian
package lists their Dockerfiles install are the lists scripts/bootstrap.sh
installs on this machine, and what each image then runs is run here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

IMAGES = REPO / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))


def packages(name: str) -> list[str]:
    text = (IMAGES / name).read_text()
    return [w for line in text.splitlines() for w in line.split("#")[0].split()]


def test_there_are_three_images() -> None:
    assert [d.parent.name for d in DOCKERFILES] == ["converter", "operator", "service"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_lints_clean(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", str(dockerfile)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_is_multi_stage_non_root_and_copies_what_exists(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", final, re.M)
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), source


def test_converter_packages_are_installed_here() -> None:
    """bootstrap.sh installs the converter image's list; check it took."""
    wanted = packages("converter/packages.txt") + packages("python-packages.txt")
    for package in wanted:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True)
        assert "install ok installed" in status.stdout, package


def test_converter_image_runtime_pieces_work() -> None:
    assert subprocess.run(["tini", "--version"], capture_output=True).returncode == 0
    fonts = subprocess.run(["fc-list"], capture_output=True, text=True).stdout
    for family in ("Liberation Serif", "Liberation Sans", "DejaVu Sans", "Noto Sans CJK"):
        assert family in fonts, family
    assert shutil.which("soffice")
    done = subprocess.run(["/usr/bin/python3", "-c", "import uno"], capture_output=True)
    assert done.returncode == 0  # the image's venv is --system-site-packages for this


@pytest.mark.parametrize("command", ["serve", "converter", "operator"])
def test_each_image_entrypoint_answers_help(command: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gendoc", command, "--help"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
