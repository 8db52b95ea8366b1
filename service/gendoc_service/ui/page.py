"""The playground's page and its static files, each under the same strict CSP.

The files are package data (pyproject.toml) read once; there is no build step
and nothing is loaded from outside the service. Scripts come only from this
origin (no inline script, no eval), images only from here and from blob: URLs
the page makes of preview pages, and the page talks only to this service.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import NotFound

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files, and an upgraded service must not be met by a stale script.
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def _asset(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


@cache
def _names() -> frozenset[str]:
    folder = resources.files(__package__) / "static"
    return frozenset(p.name for p in folder.iterdir() if p.name.endswith(tuple(_TYPES)))


def asset_response(name: str) -> Response:
    if name not in _names():
        raise NotFound(f"The playground has no file {name!r}.")
    return Response(_asset(name), media_type=_TYPES["." + name.rsplit(".", 1)[-1]],
                    headers=_HEADERS)


async def index(request: Request) -> Response:
    return asset_response("index.html")


async def asset(request: Request) -> Response:
    return asset_response(request.path_params["file"])


async def to_index(request: Request) -> Response:
    # Relative, so that it also holds under an ingress's path prefix.
    return RedirectResponse("ui/", status_code=308)


routes = [
    Route("/ui", to_index, methods=["GET"]),
    Route("/ui/", index, methods=["GET"]),
    Route("/ui/{file}", asset, methods=["GET"]),
]
