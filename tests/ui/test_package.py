"""The playground is part of the Python package: a wheel built from the repository's
tracked files carries every file of the page, and a service imported from that wheel
alone (not from this checkout) serves them at /ui/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
from conftest import REPO, start_service

STATIC = "service/gendoc_service/ui/static"


def _tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", *paths], check=True,
                         capture_output=True, text=True).stdout
    return [p for p in out.split("\0") if p]


def test_a_wheel_carries_and_serves_the_playground(tmp_path: Path) -> None:
    # The wheel is built as scripts/cluster-images.sh builds the images' one: from the
    # tracked files only, so an untracked file in this checkout cannot make it pass.
    src = tmp_path / "src"
    for name in _tracked("pyproject.toml", "src", "service", "converter_sidecar", "operator"):
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--wheel-dir", str(tmp_path / "dist"), str(src)], check=True)
    (wheel,) = (tmp_path / "dist").glob("gendoc-*.whl")
    pages = {Path(p).name: (REPO / p).read_bytes() for p in _tracked(STATIC)}
    assert {"index.html", "app.js", "api.js", "check.js", "explain.js", "style.css"} <= set(pages)
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        for name, data in pages.items():
            assert archive.read(f"gendoc_service/ui/static/{name}") == data, name
        archive.extractall(site)

    env = {"PYTHONPATH": str(site)}
    imported = subprocess.run(
        [sys.executable, "-c", "import gendoc, gendoc_service.ui.page as p;"
         " print(p.__file__); print(gendoc.__file__)"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path).stdout.split()
    assert all(Path(f).is_relative_to(site) for f in imported), imported
    service = start_service(tmp_path, env=env)
    try:
        for name, data in pages.items():
            r = httpx.get(f"{service.url}/ui/{'' if name == 'index.html' else name}")
            assert r.status_code == 200 and r.content == data, name
    finally:
        service.stop()
