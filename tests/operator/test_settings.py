"""The operator's settings: environment GENDOC_OPERATOR_*, overrides win."""

from __future__ import annotations

import pytest
from gendoc_operator.settings import OperatorSettings


def test_namespaces_from_a_comma_separated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENDOC_OPERATOR_NAMESPACES", "billing, shipping,")
    monkeypatch.setenv("GENDOC_OPERATOR_RESYNC_SECONDS", "7.5")
    settings = OperatorSettings()
    assert settings.namespaces == ["billing", "shipping"]
    assert settings.resync_seconds == 7.5
    assert OperatorSettings(namespaces=["x"]).namespaces == ["x"]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENDOC_OPERATOR_NAMESPACES", raising=False)
    settings = OperatorSettings()
    assert settings.namespaces == []
    assert settings.health_port == 8081
    assert settings.default_service_image.startswith("gendoc-service:")
    assert settings.default_converter_image.startswith("gendoc-converter:")
