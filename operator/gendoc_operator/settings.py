"""The operator's one settings object: environment `GENDOC_OPERATOR_*`, CLI flags override."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _release() -> str:
    try:
        return version("gendoc")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "latest"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENDOC_OPERATOR_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch (comma-separated in the environment); empty: all.",
    )
    health_host: str = Field(
        "0.0.0.0", description="Address of the liveness endpoint (127.0.0.1 outside a pod)."
    )
    health_port: int = Field(
        8081, description="Port of the liveness endpoint GET /healthz (images/operator EXPOSEs it)."
    )
    resync_seconds: float = Field(
        30.0,
        description="Every DocGenerator is re-converged this often, seconds, even without "
        "events: a safety net for drift that no watch reported. Child events (a Deployment "
        "edited or deleted) are handled at once, so this can stay long.",
    )
    default_service_image: str = Field(
        default_factory=lambda: f"gendoc-service:{_release()}",
        description="Image of the gendoc-service container when spec.images.service is empty; "
        "the chart sets it to the release's image, so fleets follow the installed release.",
    )
    default_converter_image: str = Field(
        default_factory=lambda: f"gendoc-converter:{_release()}",
        description="Image of the gendoc-converter container when spec.images.converter is "
        "empty (images/service and images/converter build separate images).",
    )
    field_manager: str = Field(
        "gendoc-operator",
        description="Server-side-apply field manager: the fields this manager owns on the "
        "children are put back when someone changes them.",
    )
    workers: int = Field(
        4, description="Threads running the (synchronous) handlers, i.e. API calls at once."
    )
    request_timeout: float = Field(
        30.0, description="Timeout of one API request made by the handlers, seconds."
    )
    scrape_timeout: float = Field(
        2.0,
        description="Timeout of one GET /metrics of a pod by the autoscaler, seconds. The "
        "service answers it at once even when busy (metrics are not queued behind renders), "
        "so a pod that takes longer is set aside rather than waited for.",
    )
    log_level: str = Field("info", description="Log level.")
    log_format: str = Field("text", description="'text' or 'json'.")

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [ns.strip() for ns in value.split(",") if ns.strip()]
        return value
