"""Narrow tests: the transport against a scripted loopback server, and the pure functions under it."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connector_mparticle.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    RejectedError,
    RetryLaterError,
    UnsafeResponseError,
)
from connector_mparticle.files import Folder
from connector_mparticle.flows.schedule import next_check
from connector_mparticle.flows.state import Part, RequestState, signature, state_key
from connector_mparticle.flows.subject import Subject, derived_uuid, dsr_body, opt_out_batch, submission_terms
from connector_mparticle.http.auth import BasicAuth
from connector_mparticle.http.retry import backoff_delay, parse_retry_after, retry_delay, should_retry
from connector_mparticle.http.session import HardenedSession
from connector_mparticle.http.throttle import Throttle, rate_for, rates_for
from connector_mparticle.http.transport import ApiClient
from connector_mparticle.http.urls import UrlPolicy, origin_of
from connector_mparticle.sandbox.server import Serving
from connector_mparticle.settings import POD_HOSTS, manifest, parse_settings
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
    serving = Serving(server, "scripted-http")
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    serving.stop()


def client(url: str, **overrides: Any) -> ApiClient:
    throttle = Throttle.build({"dsr": (1000.0, 1.0)}, 1.0)
    redactor = Redactor(["key-1234", "secret-5678"])
    options: dict[str, Any] = {"timeout": (2.0, 2.0), "max_retry_seconds": 5.0, "max_retry_after_seconds": 1.0,
                               "sleep": lambda s: None, "rng": random.Random(1),
                               "download_policy": UrlPolicy.of([url])}
    options.update(overrides)
    return ApiClient("dsr", url, BasicAuth(origin_of(url), "key-1234", "secret-5678"), HardenedSession(), throttle,
                     RedactingLogger(logging.getLogger("test"), redactor), redactor, **options)


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, b'{"code":400,"message":"Invalid data"}', RejectedError),
    (400, b'{"code":400,"message":"Subject request already exists."}', AlreadyExistsError),
    (401, b"{}", AuthenticationError),
    (403, b"{}", AuthenticationError),
    (404, b"{}", NotFoundError),
    (409, b'{"code":409,"message":"in progress"}', ConflictError),
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
    both = UrlPolicy.of([url, other_origin])
    with Folder.open(tmp_path) as folder:
        download = client(url, download_policy=both).download(f"{other_origin}/file.zip", folder.stage("f.zip"),
                                                              max_bytes=100)
        assert download.size_bytes == 7 and "authorization" not in script.seen[-1][2]
        client(url).download(f"{url}/file.zip", folder.stage("g.zip"), max_bytes=100)
    assert script.seen[-1][2]["authorization"].startswith("Basic ")


def test_download_refuses_oversized_files_and_leaves_nothing_behind(scripted: tuple[str, Script],
                                                                    tmp_path: Any) -> None:
    url, script = scripted
    script.responses = [(200, {}, b"x" * 5000)]
    with Folder.open(tmp_path) as folder, pytest.raises(UnsafeResponseError, match=r"larger than download\.max_bytes"):
        client(url).download(f"{url}/big.zip", folder.stage("big.zip"), max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_download_follows_redirects_only_to_allowed_hosts(scripted: tuple[str, Script], tmp_path: Any) -> None:
    url, script = scripted
    script.responses = [(302, {"Location": "https://elsewhere.example/x.zip"}, b"")]
    with Folder.open(tmp_path) as folder, pytest.raises(UnsafeResponseError, match=r"elsewhere\.example"):
        client(url).download(f"{url}/r.zip", folder.stage("r.zip"), max_bytes=100)
    assert len(script.seen) == 1


def test_retry_budget_bounds_the_total_time(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.responses = [(503, JSON, b"{}")]
    with pytest.raises(RetryLaterError) as caught:
        client(url, max_retry_seconds=0.5, sleep=lambda s: None, rng=random.Random(0)).call("GET", "/x")
    assert caught.value.retry_after is not None


def test_connection_refused_is_retry_later_named_in_words_within_seconds() -> None:
    """Issue 21: a service that is down is named as such ("connection refused", where, which setting) after a
    few seconds of retries, not after the whole retry budget (a minute by default) with no output."""
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(RetryLaterError, match=rf"cannot connect to the dsr API at http://127.0.0.1:{port}: "
                                              r"connection refused .*is dsr.base_url right\?"):
        client(f"http://127.0.0.1:{port}", max_retry_seconds=60).call("GET", "/x")
    assert time.monotonic() - started < 15


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
    req = request("deletion", customer_id="c-1", regulation="ccpa", phone="+1 800 555 1111", app_user_id="u-9")
    settings = parse_settings(sandbox_like(skip_waiting_period=True, callback_urls=["https://host.example.com/cb"],
                                           regulation="from_request", identities={"app_user_id": "other3"}))
    [group] = Subject.of(req, settings).groups(req, settings, "erasure")
    body = dsr_body(req, "erasure", group, submission_terms(req, settings, "erasure", req.submitted_at))
    assert body["subject_identities"] == {"email": {"value": "jane@example.com", "encoding": "raw"},
                                          "controller_customer_id": {"value": "c-1", "encoding": "raw"}}
    assert body["extensions"] == {"opendsr.mparticle.com": {
        "skip_waiting_period": True,
        "subject_identities": {"mobile_number": {"value": "+1 800 555 1111", "encoding": "raw"},
                               "other3": {"value": "u-9", "encoding": "raw"}}}}
    assert body["regulation"] == "ccpa" and body["group_id"] == "host-req-1"
    assert body["status_callback_urls"] == ["https://host.example.com/cb"]
    assert body["submitted_time"] == "2026-11-29T10:00:00.000Z"


def test_an_mpid_with_other_identifiers_makes_two_requests_and_ids_follow_the_subject() -> None:
    settings = parse_settings(sandbox_like())
    req = request("deletion", vendor_id="8000000000000000042")
    groups = Subject.of(req, settings).groups(req, settings, "erasure")
    assert [g.label for g in groups] == ["identities", "mpid"]
    assert [[i.kind.name for i in g.identifiers] for g in groups] == [["email"], ["mpid"]]
    mpid_body = dsr_body(req, "erasure", groups[1], submission_terms(req, settings, "erasure", req.submitted_at))
    assert "subject_identities" not in mpid_body  # the mpid goes alone, inside the extension
    assert mpid_body["extensions"]["opendsr.mparticle.com"]["subject_identities"] == {
        "mpid": {"value": "8000000000000000042", "encoding": "raw"}}
    again = Subject.of(req, settings).groups(req, settings, "erasure")
    assert [g.subject_request_id for g in again] == [g.subject_request_id for g in groups]  # exactly once
    other = request("deletion", email="omar@example.com", vendor_id="8000000000000000042")
    assert Subject.of(other, settings).groups(other, settings, "erasure")[0].subject_request_id != \
        groups[0].subject_request_id  # the same host id for another subject is another mParticle request


def test_two_categories_for_one_type_must_agree() -> None:
    settings = parse_settings(sandbox_like())
    same = request("opt_out", mobile_number="+15550100", phone="+15550100")
    assert [i.kind.name for i in Subject.of(same, settings).identifiers] == ["email", "mobile_number"]
    with pytest.raises(ConfigurationError, match="both mParticle mobile_number"):
        Subject.of(request("opt_out", mobile_number="+15550100", phone="+15550199"), settings)


def test_opt_out_batch_needs_something_to_record() -> None:
    settings = parse_settings(sandbox_like(opt_out={"ccpa_data_sale_opt_out": False}))
    with pytest.raises(ConfigurationError, match="records nothing"):
        opt_out_batch(request("opt_out"), settings, "42")


def test_state_round_trips_and_only_state_the_connector_wrote_is_trusted() -> None:
    key = state_key(["wkey-1", "wsecret-1"])
    state = RequestState([Part("abc", "identities", "pending", "2026-11-30T00:00:00.000Z")], status_checks=2)
    data = state.to_dict(key)
    assert RequestState.from_dict(data, ["abc"], key) == state
    assert RequestState.from_dict(data, ["other"], key) is None
    assert RequestState.from_dict(data, ["abc"], state_key(["wkey-1", "rotated-secret"])) is None
    for altered in ({"v": 99}, {"phase": "verifying"}, {"status_checks": 0}, {"verify_attempts": -5},
                    {"parts": [{"subject_request_id": "abc", "label": "identities", "last_status": "completed"}]},
                    {"audit": "oops"}, {"unknown_key": 1}):
        assert RequestState.from_dict({**data, **altered}, ["abc"], key) is None, altered
    for garbage in ("a string", ["a", "list"], 42, None, {}):
        assert RequestState.from_dict(garbage, ["abc"], key) is None


TERMS_SENT = {"regulation": "gdpr", "submitted_time": "2026-11-29T10:00:00.000Z", "callback_urls": [],
              "skip_waiting": True, "sent_at": "2026-11-30T08:00:00.000Z"}


@pytest.mark.parametrize("signed", [
    {"submitted_at": "garbage"}, {"submitted_at": "2026-01-01T00:00:00"},          # unreadable, or with no zone
    {"parts": [{"subject_request_id": "abc", "label": "identities", "terms": {**TERMS_SENT, "sent_at": "x"}}]},
    {"parts": [{"subject_request_id": "abc", "label": "identities", "terms": {**TERMS_SENT, "skip_waiting": 1}}]},
    {"parts": [{"subject_request_id": "abc", "label": "identities", "terms": {**TERMS_SENT, "callback_urls": [3]}}]},
    {"parts": [{"subject_request_id": "abc", "label": "identities", "terms": {"regulation": "gdpr"}}]},
])
def test_a_state_signed_with_the_key_but_holding_an_unusable_field_is_ignored_not_crashed_on(
        signed: dict[str, Any]) -> None:
    """Defence in depth: whoever holds the DSR credential can sign any state; every field must still be one the
    next call can use, or the state is ignored (the request resumes from mParticle's own record)."""
    key = state_key(["wkey-1", "wsecret-1"])
    good = RequestState([Part("abc", "identities", "pending", terms=dict(TERMS_SENT))],
                        submitted_at="2026-11-30T08:00:00.000Z")
    assert RequestState.from_dict(good.to_dict(key), ["abc"], key) == good
    body = {**{k: v for k, v in good.to_dict(key).items() if k != "mac"}, **signed}
    assert RequestState.from_dict({**body, "mac": signature(key, body)}, ["abc"], key) is None, signed


def test_settings_defaults_come_from_the_schema_and_pods_pick_hosts() -> None:
    settings = parse_settings(sandbox_like(pod="eu1"))
    assert settings.throttle.target_share == 0.75 and settings.polling.min_interval_seconds == 300
    assert settings.identity_mapping["phone"] == "mobile_number"
    assert settings.identity_strategy.login_ids == ("customer_id",)
    assert settings.profile is None and settings.verification.unverifiable == "note"
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
    assert "s3cr3t" not in redact("pw=s3cr3t-value")
    assert redact(f"Basic {base64.b64encode(b's3cr3t-value').decode()}") == "Basic ***"
    for key in ("k", "ke", "key", "a-much-longer-key"):  # every alignment of the secret inside key:secret
        header = base64.b64encode(f"{key}:s3cr3t-value".encode()).decode()
        assert redact.finds_secret(header), key
        assert base64.b64encode(b"s3cr3t-value")[:8].decode() not in redact(header)
    assert mask_email("mail jane.doe@example.com now") == "mail j***@e***.com now"
    assert "<1 hidden values>" in repr(redact)


URLS = ["https://opendsr.mparticle.com", "https://opendsr.mparticle.com:443/v3", "http://127.0.0.1:8080",
        "http://localhost:1", "http://127.0.0.2:9", "http://[::1]:8080/x", "https://10.0.0.1:8443",
        "http://opendsr.mparticle.com", "http://10.0.0.5:8080", "ftp://127.0.0.1", "https://user:pw@host.example.com",
        "http://127.0.0.1:8080\\@evil.example", "https://host%2eexample.com", "http://127.0.0.1.evil.example",
        "https://host.example.com/ path", "https://ho st.example.com"]


@pytest.mark.parametrize("url", URLS)
def test_the_schema_declares_the_url_policy_and_never_refuses_what_it_allows(url: str) -> None:
    """The URL policy decides; the credentials schema states the same rule so a host catches mistakes at load."""
    import re

    from connector_mparticle.http.urls import UrlRefused
    from connector_mparticle.settings import credentials_schema

    pattern = re.compile(credentials_schema()["$defs"]["url"]["pattern"])
    try:
        origin_of(url)
        allowed = True
    except UrlRefused:
        allowed = False
    assert bool(pattern.search(url)) == allowed


def test_the_manifest_and_the_schema_declare_the_categories_of_the_one_table() -> None:
    """Hosts read the categories from the manifest and the defaults from the schema: both follow identities.py."""
    from connector_mparticle.identities import DEFAULT_CATEGORIES, type_names
    from connector_mparticle.settings import credentials_schema

    for capability in manifest().capabilities:
        assert list(capability.identifier_categories) == list(DEFAULT_CATEGORIES)
    identities = credentials_schema()["properties"]["identities"]
    assert all(f"{category}: {kind}" in identities["description"] for category, kind in DEFAULT_CATEGORIES.items())
    assert identities["additionalProperties"]["enum"] == [*type_names(), None]
    assert set(DEFAULT_CATEGORIES) <= set(framework_request_categories())


def framework_request_categories() -> list[str]:
    from dsr_framework.validation import framework_schema

    return list(framework_schema("request")["properties"]["identities"]["properties"])
