"""The pure parts of webhooks: signature (checked by the reference implementation),
retry schedule, secret format, SSRF allow list."""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import time

import pytest
from gendoc_service.errors import InvalidRequest
from gendoc_service.settings import ServiceSettings
from gendoc_service.webhooks import (
    AllowList,
    Refused,
    SenderConfig,
    Target,
    is_public,
    parse_secret,
    retry_delay,
    sign,
    signed_headers,
)
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_signature_verified_by_the_reference_implementation() -> None:
    body = json.dumps({"type": "job.succeeded", "data": {"id": "j1"}}).encode()
    headers = signed_headers(parse_secret(SECRET), "msg_1", int(time.time()), body)
    assert Webhook(SECRET).verify(body, headers) == {"type": "job.succeeded",
                                                     "data": {"id": "j1"}}


def test_a_changed_body_or_id_fails_the_reference_check() -> None:
    key = parse_secret(SECRET)
    now = int(time.time())
    headers = signed_headers(key, "msg_1", now, b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":1}', headers | {"webhook-id": "msg_2"})


def test_signature_format() -> None:
    value = sign(b"k" * 32, "id", 1, b"")
    version, digest = value.split(",")
    assert version == "v1"
    assert len(base64.b64decode(digest)) == 32


@pytest.mark.parametrize("bad", ["whsec_", "whsec_not base64!", "whsec_" + base64.b64encode(
    b"short").decode()])
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        parse_secret(bad)


def test_retry_schedule_grows_to_hours_and_stays_within_its_jitter() -> None:
    lows = [retry_delay(n, 0.0, base=10, cap=4 * 3600) for n in range(1, 11)]
    highs = [retry_delay(n, 0.999999, base=10, cap=4 * 3600) for n in range(1, 11)]
    assert lows[0] == 5 and highs[0] == pytest.approx(10)
    assert all(a <= b for a, b in itertools.pairwise(lows))  # never shrinks
    assert highs[-1] == pytest.approx(4 * 3600) and lows[-1] == 2 * 3600  # capped
    assert sum(lows) > 8 * 3600 and sum(highs) < 24 * 3600  # hours, not days
    assert retry_delay(3, 0.5, base=10, cap=4 * 3600) == pytest.approx(120)


ALLOW = AllowList.parse("hooks.example.com, 127.0.0.1:8099, internal.svc:443, 10.96.0.0/12, "
                        "[::1]:9000")


def test_allow_list_parsing() -> None:
    assert ("hooks.example.com", None) in ALLOW.hosts
    assert ("127.0.0.1", 8099) in ALLOW.hosts
    assert ("::1", 9000) in ALLOW.hosts
    assert ALLOW.networks == (ipaddress.ip_network("10.96.0.0/12"),)
    with pytest.raises(ValueError):
        AllowList.parse("10.0.0.0/33")


def test_urls_the_allow_list_admits() -> None:
    assert ALLOW.check_url("https://hooks.example.com/a?b=1") == Target(
        "https", "hooks.example.com", 443, "/a?b=1")
    assert ALLOW.check_url("http://127.0.0.1:8099").path == "/"
    assert ALLOW.check_url("https://internal.svc/x").port == 443
    assert ALLOW.check_url("HTTPS://HOOKS.EXAMPLE.COM./").host == "hooks.example.com"


@pytest.mark.parametrize("url", [
    "https://evil.example.com/", "http://127.0.0.1:8098/", "https://internal.svc:8443/",
    "ftp://hooks.example.com/", "https://user:pw@hooks.example.com/", "http:///x",
    "https://10.96.0.1/",  # a network entry allows addresses, never URLs
])
def test_urls_the_allow_list_refuses(url: str) -> None:
    with pytest.raises(Refused):
        ALLOW.check_url(url)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "192.168.1.1", "172.16.0.1",
                                     "169.254.1.1", "100.64.0.1", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"])
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_addresses_the_policy_refuses_or_admits() -> None:
    name = ALLOW.check_url("https://hooks.example.com/")
    ALLOW.check_address(ipaddress.ip_address("93.184.216.34"), name)  # public
    ALLOW.check_address(ipaddress.ip_address("10.100.0.7"), name)  # in 10.96.0.0/12
    for bad in ("169.254.169.254", "fd00:ec2::254", "10.0.0.1", "127.0.0.1", "::1"):
        with pytest.raises(Refused):
            ALLOW.check_address(ipaddress.ip_address(bad), name)
    # A listed literal allows its address on its port only.
    local = ALLOW.check_url("http://127.0.0.1:8099/")
    ALLOW.check_address(ipaddress.ip_address("127.0.0.1"), local)
    with pytest.raises(Refused):
        ALLOW.check_address(ipaddress.ip_address("127.0.0.1"), name)
    # A metadata address is refused inside a listed network, allowed by its own entry.
    wide = AllowList.parse("h.example, 169.254.0.0/16")
    with pytest.raises(Refused, match="metadata"):
        wide.check_address(ipaddress.ip_address("169.254.169.254"), wide.check_url("http://h.example"))
    own = AllowList.parse("h.example, 169.254.169.254")
    own.check_address(ipaddress.ip_address("169.254.169.254"), own.check_url("http://h.example"))


def test_host_header_and_pinned_url() -> None:
    t = Target("https", "hooks.example.com", 443, "/a")
    assert t.host_header == "hooks.example.com"
    assert t.url_for(ipaddress.ip_address("2001:db8::1")) == "https://[2001:db8::1]:443/a"
    assert Target("http", "h", 8080, "/").host_header == "h:8080"


def test_sender_config_from_settings_and_checks_at_submission() -> None:
    config = SenderConfig.of(ServiceSettings(webhook_secret=SECRET,
                                             webhook_allowed_hosts="hooks.example.com"))
    assert config.key == parse_secret(SECRET)
    config.check("https://hooks.example.com/gendoc")
    with pytest.raises(InvalidRequest, match="not in GENDOC_WEBHOOK_ALLOWED_HOSTS"):
        config.check("https://169.254.169.254/")
    off = SenderConfig.of(ServiceSettings(webhook_allowed_hosts="hooks.example.com"))
    with pytest.raises(InvalidRequest, match="GENDOC_WEBHOOK_SECRET"):
        off.check("https://hooks.example.com/gendoc")
    with pytest.raises(ValueError, match="webhook secret"):
        SenderConfig.of(ServiceSettings(webhook_secret="whsec_short"))
