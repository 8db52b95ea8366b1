"""The API routes the playground adds (preview, compare, sample data), over real HTTP
against the real stack: what any client, not only the page, can rely on."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterator

import httpx
import pytest
from docx_helpers import make_docx
from PIL import Image

from .conftest import API_KEY, Stack

pytestmark = pytest.mark.libreoffice
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60, headers={"x-api-key": API_KEY}) as c:
        yield c


def _upload(client: httpx.Client, *paragraphs: str) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    r = client.put(f"/v1/templates/{name}", content=make_docx(*paragraphs),
                   headers={"content-type": DOCX})
    assert r.status_code == 201, r.text
    return name


def test_preview_gives_page_images_of_the_pdf(client: httpx.Client) -> None:
    name = _upload(client, "Hello {{ name }}")
    r = client.post("/v1/preview", json={"template": name, "data": {"name": "Ada"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["template"] == name and len(body["version"]) == 64
    assert body["pages"] == 1 and len(body["images"]) == 1
    image = Image.open(io.BytesIO(base64.b64decode(body["images"][0])))
    assert image.format == "PNG"
    # python-docx's default page is US Letter (8.5 x 11 in), drawn at 60 dpi.
    assert abs(image.width - 510) <= 1 and abs(image.height - 660) <= 1
    # Something is drawn: not a blank page.
    assert image.convert("L").getextrema()[0] < 128


def test_preview_answers_template_problems_like_render(client: httpx.Client) -> None:
    name = _upload(client, "Hello {{ customer.name }}")
    r = client.post("/v1/preview", json={"template": name, "data": {}, "strict": True})
    assert r.status_code == 422
    assert r.json()["type"].endswith("/undefined-variables")
    assert r.json()["variables"] == ["customer.name"]
    assert client.post("/v1/preview", json={"template": "no-such"}).status_code == 404
    assert httpx.post(f"{client.base_url}/v1/preview", json={"template": name}).status_code == 401


def test_sample_data_round_trip_and_refusals(client: httpx.Client) -> None:
    name = _upload(client, "Hello {{ name }}")
    path = f"/v1/templates/{name}/sample"
    missing = client.get(path)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/not-found")
    assert client.put(path, json={"name": "Ada"}).status_code == 204
    assert client.get(path).json() == {"name": "Ada"}
    assert client.get(path).headers["content-type"] == "application/json"
    not_object = client.put(path, json=["Ada"])
    assert not_object.status_code == 422
    assert not_object.json()["type"].endswith("/invalid-request")
    assert client.put(path, content=b"{", headers={"content-type": "application/json"}
                      ).status_code == 400
    assert client.put(path, content=b"{}", headers={"content-type": "text/plain"}
                      ).status_code == 415
    assert client.put("/v1/templates/no-such/sample", json={}).status_code == 404


def test_compare_two_versions(client: httpx.Client) -> None:
    name = _upload(client, "Hello {{ customer.name }}", "Total {{ total }}")
    old = client.get(f"/v1/templates/{name}").json()["latest"]
    r = client.put(f"/v1/templates/{name}", content=make_docx(
        "Hello {{ customer.name }} {{ customer.email }}", "Thanks"), headers={"content-type": DOCX})
    new = r.json()["version"]
    body = client.get(f"/v1/templates/{name}/compare", params={"from": old}).json()
    assert (body["from"], body["to"]) == (old, new)
    assert body["variables"] == {"added": ["customer.email"], "removed": ["total"]}
    assert "-Total {{ total }}" in body["diff"] and "+Thanks" in body["diff"]
    assert client.get(f"/v1/templates/{name}/compare").status_code == 400
    unknown = client.get(f"/v1/templates/{name}/compare", params={"from": "0" * 64})
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith("/version-not-found")


def test_preview_of_an_uploaded_template_stores_nothing(client: httpx.Client) -> None:
    before = client.get("/v1/templates").json()["templates"]
    r = client.post("/v1/preview", files={"template": ("draft.docx", make_docx("Hi {{ x }}"))},
                    data={"data": '{"x": "there"}'})
    assert r.status_code == 200, r.text
    assert r.json()["pages"] == 1 and r.json()["version"] is None
    assert client.get("/v1/templates").json()["templates"] == before
