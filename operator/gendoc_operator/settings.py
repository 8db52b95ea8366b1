"""The operator's one settings object: environment `GENDOC_OPERATOR_*`, CLI flags override."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from pydantic import Field, field_validator, model_validator
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
    lease_namespace: str = Field(
        "",
        description="Namespace of the leader-election Lease (the chart sets the operator's "
        "own). Empty: no leader election, so exactly one replica may run.",
    )
    lease_name: str = Field("gendoc-operator", description="Name of that Lease.")
    lease_duration_seconds: float = Field(
        8.0,
        description="How long a Lease not renewed keeps the other replicas waiting, seconds. "
        "A leader killed right after renewing is replaced after at most this + 2 x "
        "lease_retry_period_seconds (11 s) + kopf's start-up (1-2 s): within the 15 s "
        "docs/operator.md promises.",
    )
    lease_renew_deadline_seconds: float = Field(
        5.0,
        description="A leader that could not renew for this long stops (exits), seconds: "
        "3 s before the others may take over, so two never write at once.",
    )
    lease_retry_period_seconds: float = Field(
        1.5,
        description="How often the leader renews and a standby looks at the Lease, seconds "
        "(one GET and at most one PUT each time).",
    )
    log_level: str = Field("info", description="Log level.")
    log_format: str = Field("text", description="'text' or 'json'.")

    @model_validator(mode="after")
    def _lease_timing(self) -> OperatorSettings:
        # client-go's rule: a leader must give up before its Lease can be taken, and
        # must be able to try renewing more than once before it gives up.
        if not (self.lease_duration_seconds > self.lease_renew_deadline_seconds
                > self.lease_retry_period_seconds * 1.2 > 0):
            raise ValueError("lease_duration_seconds > lease_renew_deadline_seconds > "
                             "1.2 x lease_retry_period_seconds > 0 is required")
        return self

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [ns.strip() for ns in value.split(",") if ns.strip()]
        return value
