"""Narrow tests: the transport against a scripted loopback server, and the pure functions under it."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from connector_mparticle.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    RejectedError,
    RetryLaterError,
    UnsafeResponseError,
)
from connector_mparticle.retry import backoff_delay, parse_retry_after, retry_delay, should_retry
from connector_mparticle.schedule import next_check
from connector_mparticle.settings import POD_HOSTS, manifest, parse_settings
from connector_mparticle.subject import RequestState, derived_uuid, dsr_body, opt_out_batch
from connector_mparticle.throttle import Throttle, rate_for, rates_for
from connector_mparticle.transport import ApiClient
from dsr_framework.redact import RedactingLogger, Redactor, mask_email
from tests.support.hosting import request


class Script:
    """Responses the scripted server gives, in order (the last one repeats)."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, headers, body = script.responses[min(len(script.seen), len(script.responses)) - 1]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _any

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


def client(url: str, **overrides: Any) -> ApiClient:
    throttle = Throttle.build({"dsr": (1000.0, 1.0)}, 1.0)
    options: dict[str, Any] = {"timeout": (2.0, 2.0), "max_retry_seconds": 5.0, "max_retry_after_seconds": 1.0,
                               "verify": True, "sleep": lambda s: None, "rng": random.Random(1)}
    options.update(overrides)
    return ApiClient("dsr", url, requests.auth.HTTPBasicAuth("key-1234", "secret-5678"), requests.Session(), throttle,
                     RedactingLogger(logging.getLogger("test"), Redactor(["secret-5678"])), **options)


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, b'{"code":400,"message":"Invalid data"}', RejectedError),
    (400, b'{"code":400,"message":"Subject request already exists."}', AlreadyExistsError),
    (401, b"{}", AuthenticationError),
    (403, b"{}", AuthenticationError),
    (404, b"{}", NotFoundError),
    (409, b'{"code":409,"message":"in progress"}', RejectedError),
])
def test_client_errors_are_never_retried(scripted: tuple[str, Script], status: int, body: bytes,
                                         error: type[Exception]) -> None:
    url, script = scripted
    script.responses = [(status, JSON, body)]
    with pytest.raises(error) as caught:
        client(url).call("GET", "/v3/requests/x", what="check")
    assert len(script.seen) == 1
    assert "secret-5678" not in str(caught.value)


def test_server_errors_and_unreadable_bodies_are_retried_until_success(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.responses = [(503, JSON, b"{}"), (200, JSON, b"{not json"), (429, {"Retry-After": "0"}, b""),
                        (200, JSON, b'{"ok": true}')]
    reply = client(url).call("GET", "/v3/requests/x")
    assert reply.body == {"ok": True} and reply.attempts == 4 and len(script.seen) == 4


def test_redirects_are_refused_not_followed(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.responses = [(302, {"Location": "https://evil.example/steal"}, b"")]
    with pytest.raises(UnsafeResponseError, match="redirect"):
        client(url).call("GET", "/v3/requests/x")
    assert len(script.seen) == 1


def test_basic_auth_goes_to_the_api_but_not_to_a_download_on_another_origin(scripted: tuple[str, Script],
                                                                           tmp_path: Any) -> None:
    url, script = scripted
    script.responses = [(200, {"Content-Type": "application/zip"}, b"PK-data")]
    other_origin = url.replace("127.0.0.1", "localhost")
    download = client(url).download(f"{other_origin}/file.zip", tmp_path / "f.zip", max_bytes=100,
                                    allowed_hosts={"localhost"})
    assert download.size_bytes == 7 and "authorization" not in script.seen[-1][2]
    client(url).download(f"{url}/file.zip", tmp_path / "g.zip", max_bytes=100, allowed_hosts={"127.0.0.1"})
    assert script.seen[-1][2]["authorization"].startswith("Basic ")


def test_download_refuses_oversized_files_and_leaves_nothing_behind(scripted: tuple[str, Script],
                                                                    tmp_path: Any) -> None:
    url, script = scripted
    script.responses = [(200, {}, b"x" * 5000)]
    with pytest.raises(UnsafeResponseError, match=r"larger than download\.max_bytes"):
        client(url).download(f"{url}/big.zip", tmp_path / "big.zip", max_bytes=1000, allowed_hosts={"127.0.0.1"})
    assert list(tmp_path.iterdir()) == []


def test_download_follows_redirects_only_to_allowed_hosts(scripted: tuple[str, Script], tmp_path: Any) -> None:
    url, script = scripted
    script.responses = [(302, {"Location": "https://elsewhere.example/x.zip"}, b"")]
    with pytest.raises(UnsafeResponseError, match=r"elsewhere\.example"):
        client(url).download(f"{url}/r.zip", tmp_path / "r.zip", max_bytes=100, allowed_hosts={"127.0.0.1"})
    assert len(script.seen) == 1


def test_retry_budget_bounds_the_total_time(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.responses = [(503, JSON, b"{}")]
    with pytest.raises(RetryLaterError) as caught:
        client(url, max_retry_seconds=0.5, sleep=lambda s: None, rng=random.Random(0)).call("GET", "/x")
    assert caught.value.retry_after is not None


def test_connection_refused_is_retry_later() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RetryLaterError, match="connection failed"):
        client(f"http://127.0.0.1:{port}", max_retry_seconds=0.2).call("GET", "/x")


def test_retry_policy() -> None:
    assert [should_retry(s) for s in (None, 429, 500, 502, 503, 504, 400, 401, 403, 404, 409)] == [
        True, True, True, True, True, True, False, False, False, False, False]
    assert parse_retry_after("7") == 7.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8 <= (parse_retry_after(in_ten) or 0) <= 10
    assert retry_delay(0, "120", max_retry_after=30) == 30  # capped
    rng = random.Random(5)
    assert all(0 <= backoff_delay(n, rng) <= min(30, 0.5 * 2**n) for n in range(12))
    assert max(backoff_delay(20, random.Random(i)) for i in range(50)) <= 30


def test_next_check_is_at_the_expected_time_within_bounds_and_grows_when_overdue() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    assert next_check(now, now + timedelta(hours=5), 0, 300, 86400) == now + timedelta(hours=5, seconds=300)
    assert next_check(now, now + timedelta(seconds=10), 0, 300, 86400) == now + timedelta(seconds=310)
    assert next_check(now, now + timedelta(days=21), 0, 300, 86400) == now + timedelta(days=1)
    overdue = [next_check(now, now - timedelta(hours=1), n, 300, 86400) - now for n in range(10)]
    assert overdue[0] == timedelta(seconds=300) and overdue[1] == timedelta(seconds=600)
    assert overdue[-1] == timedelta(days=1)
    assert next_check(now, None, 0, 300, 86400) == now + timedelta(seconds=300)


@pytest.mark.parametrize("per_second", [0.5, 12.5, 37.5, 202.5, 1000])
def test_rates_never_exceed_the_target_and_waste_little(per_second: float) -> None:
    rate = rate_for(per_second)
    achieved = rate.limit * 1000 / rate.interval
    assert per_second * 0.95 <= achieved <= per_second
    assert rate.interval <= max(150, 1000 / per_second + 1)


def test_daily_limits_are_caps_not_trickles() -> None:
    daily = rates_for(80000, 86400, 0.75)
    assert daily.limit == 60000 and daily.interval == 86400 * 1000


def test_derived_ids_are_stable_distinct_and_valid_v4() -> None:
    first = derived_uuid("host-1", "erasure")
    assert first == derived_uuid("host-1", "erasure")
    assert len({first, derived_uuid("host-1", "access"), derived_uuid("host-2", "erasure")}) == 3
    parsed = uuid.UUID(first)
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def sandbox_like(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"dsr": {"auth": {"type": "basic", "key": "wkey-1", "secret": "wsecret-1"}},
                            "inputs": {"auth": {"type": "basic", "key": "ikey-1", "secret": "isecret-1"}}}
    base.update(extra)
    return base


def test_dsr_body_shape_and_skip_waiting_period() -> None:
    settings = parse_settings(sandbox_like(identities=["email", "customer_id"], skip_waiting_period=True,
                                           callback_urls=["https://host.example.com/cb"], regulation="from_request"))
    body = dsr_body(request("deletion", customer_id="c-1", regulation="ccpa"), settings, "erasure")
    assert body["subject_identities"] == {"email": {"value": "jane@example.com", "encoding": "raw"},
                                          "controller_customer_id": {"value": "c-1", "encoding": "raw"}}
    assert body["regulation"] == "ccpa" and body["group_id"] == "host-req-1"
    assert body["extensions"] == {"opendsr.mparticle.com": {"skip_waiting_period": True}}
    assert body["status_callback_urls"] == ["https://host.example.com/cb"]
    assert body["submitted_time"] == "2026-11-29T10:00:00.000Z"


def test_opt_out_batch_needs_something_to_record() -> None:
    settings = parse_settings(sandbox_like(opt_out={"ccpa_data_sale_opt_out": False}))
    with pytest.raises(ConfigurationError, match="records nothing"):
        opt_out_batch(request("opt_out"), settings, "42")


def test_state_round_trip_and_foreign_state_is_ignored() -> None:
    state = RequestState("abc", expected_completion_time="2026-11-30T00:00:00.000Z", status_checks=2)
    data = state.to_dict()
    assert RequestState.from_dict(data, "abc") == state
    assert RequestState.from_dict(data, "other") is None
    assert RequestState.from_dict({**data, "v": 99}, "abc") is None
    assert RequestState.from_dict({**data, "phase": "exploded"}, "abc") is None
    assert RequestState.from_dict({**data, "expected_completion_time": "next tuesday"}, "abc") is None
    assert RequestState.from_dict({**data, "status_checks": "many"}, "abc") is None
    assert RequestState.from_dict({**data, "audit": "oops"}, "abc") is None
    assert RequestState.from_dict({**data, "unknown_key": 1}, "abc") == state  # unknown keys are ignored


def test_settings_defaults_come_from_the_schema_and_pods_pick_hosts() -> None:
    settings = parse_settings(sandbox_like(pod="eu1"))
    assert settings.target_share == 0.75 and settings.poll_min_seconds == 300 and settings.identities == ("email",)
    assert settings.events_url == "https://s2s.eu1.mparticle.com"
    assert settings.identity_url == "https://identity.eu1.mparticle.com"
    assert "wsecret-1" not in repr(settings) and "isecret-1" not in repr(settings)
    assert settings.limit("dsr") == (1000, 60) and settings.limit("events") == (270, 1)


def test_every_default_host_is_a_declared_egress_host() -> None:
    declared = set(manifest().egress_hosts)
    for hosts in POD_HOSTS.values():
        for url in hosts.values():
            assert url.removeprefix("https://") in declared


def test_redactor_hides_secrets_and_their_basic_auth_form_and_masks_emails() -> None:
    import base64

    redact = Redactor(["s3cr3t-value"])
    basic = base64.b64encode(b"key:s3cr3t-value").decode()
    assert "s3cr3t" not in redact("pw=s3cr3t-value")
    assert redact(f"Basic {base64.b64encode(b's3cr3t-value').decode()}") == "Basic ***"
    assert basic  # the key:secret pair encodes differently; secrets are never put in headers we log
    assert mask_email("mail jane.doe@example.com now") == "mail j***@e***.com now"
    assert "<1 hidden values>" in repr(redact)
