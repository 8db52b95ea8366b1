"""The three images: linted, their install steps are the ones CI runs, their commands work.

The cluster tier (tests/cluster) builds and runs them (scripts/cluster-images.sh);
here, without Docker, their Dockerfiles are linted, the Debian package lists
they install are the lists scripts/bootstrap.sh installs on this machine, and
what each image then runs is run here.
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
# Not gendoc's components: the shared base, and two images only the cluster tier runs
# (the pod sandbox's pause, and `tool`: the S3 server as a pod).
COMPONENTS = [d for d in DOCKERFILES if d.parent.name not in ("base", "pause", "tool")]


def packages(name: str) -> list[str]:
    text = (IMAGES / name).read_text()
    return [w for line in text.splitlines() for w in line.split("#")[0].split()]


def test_there_are_three_images_a_shared_base_and_the_test_tier_images() -> None:
    assert [d.parent.name for d in COMPONENTS] == ["converter", "operator", "service"]
    assert [d.parent.name for d in DOCKERFILES] == [
        "base", "converter", "operator", "pause", "service", "tool"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_lints_clean(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", str(dockerfile)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", COMPONENTS, ids=lambda p: p.parent.name)
def test_dockerfile_uses_the_shared_venv_runs_non_root_copies_what_exists(
        dockerfile: Path) -> None:
    """The venv is built once, in images/base; each image takes it from there."""
    text = dockerfile.read_text()
    assert re.search(r"^FROM \$\{BASE\}", text, re.M)
    assert "pip install" not in text
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", final, re.M)
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), source


def test_the_base_builds_the_venv_from_the_wheelhouse_alone() -> None:
    text = (IMAGES / "base" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # the wheels stay in the first stage
    assert "--no-index --find-links /tmp/deps" in text and "--no-deps /tmp/gendoc" in text
    assert re.search(r"^USER 10001:10001$", text.rsplit("\nFROM ", 1)[1], re.M)


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
