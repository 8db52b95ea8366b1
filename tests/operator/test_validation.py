"""What a schema-valid spec still cannot become, and what its pods need to exist."""

from __future__ import annotations

from typing import Any

from gendoc_operator import crd
from gendoc_operator.children import Images
from gendoc_operator.validation import Reference, problems, references

DEFAULTS = Images(service="gendoc-service:9", converter="gendoc-converter:9")


def spec(**fields: Any) -> dict[str, Any]:
    return crd.with_defaults(fields)


def test_problems_of_a_spec_that_passes_the_schema() -> None:
    assert problems(spec(), defaults=DEFAULTS) == []
    assert problems(spec(), defaults=Images()) == [
        "images.service is empty and the operator has no default service image",
        "images.converter is empty and the operator has no default converter image"]
    greedy = spec(resources={"converter": {"requests": {"memory": "3Gi", "cpu": "2"},
                                           "limits": {"memory": "3072Mi", "cpu": "1500m"}}})
    assert problems(greedy, defaults=DEFAULTS) == [
        "resources.converter: requests.cpu 2 exceeds limits.cpu 1500m"]


def test_a_gotenberg_converter_needs_no_converter_image() -> None:
    gotenberg = spec(converter={"gotenberg": {"image": "gotenberg/gotenberg:8"}})
    assert problems(gotenberg, defaults=Images(service="s:1")) == []


def test_references_are_the_mounted_configmaps_not_the_secret() -> None:
    assert references(spec()) == []
    full = spec(templates={"configMaps": [{"name": "a"}, {"name": "b"}]},
                service={"apiKeysSecret": "keys"})  # the operator may not read Secrets
    assert references(full) == [
        Reference("ConfigMap", "a", "templates.configMaps[0].name"),
        Reference("ConfigMap", "b", "templates.configMaps[1].name")]


def test_locale_and_timezone_the_service_would_refuse() -> None:
    assert problems(spec(service={"locale": "de-DE", "timezone": "Europe/Berlin"}),
                    defaults=DEFAULTS) == []
    found = problems(spec(service={"locale": "xx_YY", "timezone": "Mars/Olympus"}),
                     defaults=DEFAULTS)
    assert [f.split(":")[0] for f in found] == ["service.locale", "service.timezone"]
    assert "unknown locale 'xx_YY'" in found[0] and "unknown time zone" in found[1]


def test_an_object_store_port_a_network_policy_cannot_hold_is_a_problem() -> None:
    """The CRD's url() takes any digits as a port; building the NetworkPolicy raised."""
    def store(url: str) -> dict[str, Any]:
        return spec(templates={"objectStore": {"endpoint": url, "bucket": "docs",
                                               "credentialsSecret": "s3"}})

    assert problems(store("http://10.0.0.9:9000"), defaults=DEFAULTS) == []
    assert problems(store("http://10.0.0.9:70000"), defaults=DEFAULTS) == [
        "templates.objectStore.endpoint: the port of http://10.0.0.9:70000 is not one of "
        "1-65535"]
    assert problems(store("https://s3.example:0"), defaults=DEFAULTS) == [
        "templates.objectStore.endpoint: the port of https://s3.example:0 is not one of 1-65535"]
