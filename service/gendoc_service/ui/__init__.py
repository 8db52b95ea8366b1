"""The playground at /ui: a page for template authors, served by the service itself.

`page` serves the page and its static files (under one Content-Security-Policy);
`api` adds the routes the page needs beyond API v1's core (preview, compare,
sample data), which are part of the service API like any other /v1 route.
"""

from __future__ import annotations

from .api import routes as api_routes
from .page import routes as page_routes

routes = [*api_routes, *page_routes]
